"""A tracking server for a lab: PostgreSQL, MLflow's sign-in, artifacts through the server.

``python -m experiments.server start folder=<folder>`` (``commands/server.py``) starts it;
this package does the work: ``secrets`` (the admin's password, the generated ones),
``postgres`` (a cluster of the user's own, on loopback), ``process`` (what was started,
so that ``stop`` ends exactly that) and ``mlflow_server`` (``mlflow server`` with
``--app-name basic-auth`` and ``--serve-artifacts``).
"""
