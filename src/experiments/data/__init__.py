"""Data: every dataset read into the same train/validation/test ``Splits``, and the stream."""
