"""``python -m experiments.server``, the name users' scripts call (code: ``commands.server``)."""

from experiments.commands import fast_exit
from experiments.commands.server import main

if __name__ == "__main__":
    fast_exit.run(main)
