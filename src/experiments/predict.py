"""``python -m experiments.predict``, the name users' scripts call (code: ``commands.predict``)."""

from experiments.commands import fast_exit
from experiments.commands.predict import main

if __name__ == "__main__":
    fast_exit.run(main)
