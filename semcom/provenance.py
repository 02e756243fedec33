"""What a number was made with: library versions for results files and model cards."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["library_versions"]

_DISTRIBUTIONS = ("semcom", "torch", "sionna-no-rt", "numpy", "pillow", "pillow-heif", "pytorch-msssim", "pydantic",
                  "safetensors")


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape semcom's numbers (installed ones only)."""
    out = {"python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if "semcom" not in out:  # running from a checkout that is not installed
        import semcom

        out["semcom"] = semcom.__version__
    return out
