"""``python -m experiments.server``, the name users' scripts call (code: ``commands.server``)."""

from experiments.commands.server import main

if __name__ == "__main__":
    main()
