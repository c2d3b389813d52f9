"""``python -m experiments.study``, the name users' scripts call (code: ``commands.study``)."""

from experiments.commands import fast_exit
from experiments.commands.study import main

if __name__ == "__main__":
    fast_exit.run(main)
