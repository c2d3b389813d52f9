"""``python -m experiments.explain``, the name users' scripts call (code: ``commands.explain``)."""

from experiments.commands import fast_exit
from experiments.commands.explain import main

if __name__ == "__main__":
    fast_exit.run(main)
