"""``python -m experiments.predict``: kept at this name for users' scripts (see ``commands.predict``)."""

from experiments.commands.predict import main

if __name__ == "__main__":
    main()
