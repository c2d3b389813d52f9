"""`python -m experiments [overrides]`: train one model (or a sweep with -m)."""

from experiments.commands.app import main

if __name__ == "__main__":
    main()
