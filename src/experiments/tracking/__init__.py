"""MLflow: the store, the run's lifecycle, what a run logs, and what it could not send."""
