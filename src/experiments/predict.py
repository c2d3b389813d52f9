"""``python -m experiments.predict``, the name users' scripts call (code: ``commands.predict``)."""

from experiments.commands.predict import main

if __name__ == "__main__":
    main()
