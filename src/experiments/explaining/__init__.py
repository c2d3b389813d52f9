"""What a model looks at: Grad-CAM maps (``gradcam``) and their overlays on the raw image
(``overlay``). The command is ``commands/explain.py`` (``python -m experiments.explain``)."""
