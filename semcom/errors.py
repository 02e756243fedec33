"""Errors that semcom reports to users as one clear line (no traceback in the CLI)."""

__all__ = [
    "ALLOW_CODE_ENV",
    "ALLOW_UNVERIFIED_ENV",
    "CheckpointError",
    "DatasetError",
    "ModelConfigError",
    "ScenarioError",
    "SemcomError",
    "SemcomWarning",
    "allowed",
]

#: Opt-ins a user gives with ``semcom --allow-code`` / ``--allow-unverified``; environment variables so
#: that the worker processes a run starts inherit them.
ALLOW_CODE_ENV = "SEMCOM_ALLOW_CODE"
ALLOW_UNVERIFIED_ENV = "SEMCOM_ALLOW_UNVERIFIED"


def allowed(opt_in: str) -> bool:
    """Whether the user gave the opt-in ``opt_in`` (one of the ``ALLOW_*_ENV`` names)."""
    import os

    return os.environ.get(opt_in, "").strip().lower() not in ("", "0", "false", "no")


class SemcomWarning(UserWarning):
    """Something a user should know that does not stop the work (the CLI prints ``warning: ...``)."""


class SemcomError(Exception):
    """Base class: the message says what went wrong and what to do."""


class DatasetError(SemcomError):
    """A dataset is missing, truncated or fails its checksum."""


class CheckpointError(SemcomError):
    """A checkpoint is missing, corrupt or does not match the model asked for."""


class ScenarioError(SemcomError):
    """A scenario file is invalid (the message names file, line and field)."""


class ModelConfigError(SemcomError, ValueError):
    """A model architecture cannot be built as asked (also a ValueError for library callers)."""
