"""``python -m experiments.lr_find``, the name users' scripts call (code: ``commands.lr_find``)."""

from experiments.commands.lr_find import main

if __name__ == "__main__":
    main()
