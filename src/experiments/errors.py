"""The project's exceptions: each message says what is wrong and how to fix it."""


class ExperimentError(Exception):
    """An error the user can act on; the command line prints it as one line."""


class ConfigError(ExperimentError):
    """A configuration value is invalid."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


class DataError(ExperimentError):
    """A dataset cannot be found or read."""


class TrackingError(ExperimentError):
    """The MLflow tracking store cannot be used."""


class DiskFullError(ExperimentError):
    """A disk the run writes to is full (or over quota)."""


class TrainingError(ExperimentError):
    """Training went wrong in a way the user can act on (e.g. the loss became NaN)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
