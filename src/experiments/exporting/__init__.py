"""Export a trained model to other runtimes, and check each file against the Keras model.

``formats``: what each format is, how Keras writes it and which runtime reads it back;
``source``: the model to export and the images it is checked on; ``parity``: the gate;
``speed``: size, latency and throughput, the same protocol for every runtime. The command
is ``commands/export.py`` (``python -m experiments.export``).
"""
