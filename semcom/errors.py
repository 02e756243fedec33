"""Errors that semcom reports to users as one clear line (no traceback in the CLI)."""

__all__ = ["CheckpointError", "DatasetError", "ModelConfigError", "ScenarioError", "SemcomError"]


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
