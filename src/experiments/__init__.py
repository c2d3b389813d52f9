"""Hydra-configured, MLflow-tracked image-classification experiments with Keras."""

__version__ = "0.1.0"
