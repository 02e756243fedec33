"""Files every semcom checkpoint shares: safetensors weights, a JSON card, the sha256 that ties them.

A checkpoint ``PATH.safetensors`` holds tensors and, in its metadata, a format tag and the
configuration it was built from; its card ``PATH.json`` (same stem) says how it was made and carries
the sha256 of the weights file. Reading never runs code from a file: safetensors and JSON are data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from semcom.errors import CheckpointError
from semcom.provenance import library_versions

__all__ = ["card_path", "load_card", "read_metadata", "read_tensors", "sha256_file", "verify_card", "write_checkpoint"]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_path(weights: str | Path) -> Path:
    """The card that belongs to a weights file: same stem, ``.json``."""
    return Path(weights).with_suffix(".json")


def load_card(path: str | Path) -> dict[str, Any]:
    """Read the JSON card of a weights file (or the card path itself)."""
    p = Path(path)
    cp = p if p.suffix == ".json" else card_path(p)
    try:
        return json.loads(cp.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{cp}: model card not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cp}: model card is not valid JSON ({exc})") from None


def verify_card(path: str | Path) -> dict[str, Any]:
    """The card of ``path`` after checking the file's sha256 against it (``{}`` when there is no card)."""
    path = Path(path)
    if not card_path(path).is_file():
        return {}
    card = load_card(path)
    want = card.get("sha256")
    if want and sha256_file(path) != want:
        raise CheckpointError(
            f"{path}: sha256 does not match its card {card_path(path).name} "
            "(file corrupt or replaced); download or train it again"
        )
    return card


def read_tensors(
    path: str | Path, meta_key: str, what: str, fmt: str
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Open a semcom safetensors file: ``(metadata, float32 tensors)``; tensors only, no code runs.

    Raises ``CheckpointError`` when the file is unreadable or is not a semcom ``what`` checkpoint
    (its metadata lacks the format tag ``fmt`` or the key ``meta_key``).
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k).float() for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("format") != fmt or meta_key not in meta:
        raise CheckpointError(
            f"{path}: not a semcom {what} checkpoint (format {meta.get('format')!r}, expected {fmt!r})"
        )
    return meta, state


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a safetensors file (``{}`` when it has none); no tensor is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def write_checkpoint(
    state: dict[str, torch.Tensor],
    path: str | Path,
    metadata: dict[str, str],
    card: dict[str, Any],
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write tensors to ``path`` (``.safetensors``, atomically, mode 0644) and the card beside it.

    The card gains ``storage_dtype``, ``parameters``, ``weights_file``, ``size_bytes``, ``sha256`` and
    ``library_versions``. Returns the weights path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.chmod(0o644)
    tmp.replace(path)
    full = dict(card)
    full["storage_dtype"] = str(dtype).removeprefix("torch.")
    full["parameters"] = sum(int(v.numel()) for v in tensors.values())
    full["weights_file"] = path.name
    full["size_bytes"] = path.stat().st_size
    full["sha256"] = sha256_file(path)
    full.setdefault("library_versions", library_versions())
    cp = card_path(path)
    cp.with_suffix(".json.tmp").write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    cp.with_suffix(".json.tmp").replace(cp)
    return path
