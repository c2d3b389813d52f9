"""What users type: every command's entry point.

MLflow's usage reports are off unless the user turns them on (MLFLOW_DISABLE_TELEMETRY=
false): their thread sets and unsets an environment variable while the run's threads
read os.environ, and a request that reads it at that moment fails (KeyError:
'_MLFLOW_TELEMETRY_SESSION_ID'), which cost a run in benchmarks/lab_server_load.py.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
