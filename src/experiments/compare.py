"""``python -m experiments.compare``, the name users' scripts call (code: ``commands.compare``)."""

from experiments.commands import fast_exit
from experiments.commands.compare import main

if __name__ == "__main__":
    fast_exit.run(main)
