"""``python -m experiments.lr_find``, the name users' scripts call (code: ``commands.lr_find``)."""

from experiments.commands import fast_exit
from experiments.commands.lr_find import main

if __name__ == "__main__":
    fast_exit.run(main)
