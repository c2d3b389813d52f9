"""`python -m experiments [overrides]`: train one model (or a sweep with -m)."""

from experiments.commands import app, fast_exit


def main() -> None:
    """The ``experiments`` command: ``python -m experiments``, or the installed script."""
    fast_exit.run(app.main)


if __name__ == "__main__":
    main()
