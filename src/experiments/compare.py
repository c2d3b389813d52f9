"""``python -m experiments.compare``: kept at this name for users' scripts (see ``commands.compare``)."""

from experiments.commands.compare import main

if __name__ == "__main__":
    main()
