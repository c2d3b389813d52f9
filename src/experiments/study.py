"""``python -m experiments.study``: kept at this name for users' scripts (see ``commands.study``)."""

from experiments.commands.study import main

if __name__ == "__main__":
    main()
