"""Export a trained model to other runtimes, and check each file against the Keras model.

``formats``: what each format is, how Keras writes it and which runtime reads it back;
``runtimes``: each format's runtime; ``source``: the model to export and the images it is
checked on; ``parity``: the gate; ``record``: the export in MLflow. Latency and throughput
follow the run's own protocol (``training.cost``). The command is ``commands/export.py``
(``python -m experiments.export``).
"""
