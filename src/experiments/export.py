"""``python -m experiments.export``, the name users' scripts call (code: ``commands.export``)."""

from experiments.commands import fast_exit
from experiments.commands.export import main

if __name__ == "__main__":
    fast_exit.run(main)
