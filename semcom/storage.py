"""Weights files and their cards: every semcom checkpoint is found, read and written here.

A checkpoint ``PATH.safetensors`` holds tensors and, in its metadata, a format tag and the
configuration it was built from; its card ``PATH.json`` (same stem) says how it was made and carries
the sha256 of the weights file. Reading never runs code from a file: safetensors and JSON are data.

Where weights come from: a name that ships with semcom (a :class:`Shelf`, such as the JSCC zoo or
the shipped receivers) or a file. :func:`resolve_weights` tells the two apart by one rule and returns
a :class:`ResolvedWeights`, which reads the card and hashes the file at most once however many
readers ask (the loader that verifies, the system that reports the checksum).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import torch

from semcom.errors import ALLOW_UNVERIFIED_ENV, CheckpointError, SemcomError, SemcomWarning, allowed
from semcom.provenance import library_versions

__all__ = [
    "WEIGHTS_SUFFIXES",
    "ResolvedWeights",
    "Shelf",
    "card_path",
    "fill_module",
    "load_card",
    "names_a_file",
    "read_metadata",
    "read_tensors",
    "resolve_weights",
    "sha256_file",
    "write_checkpoint",
]

#: Suffixes that make a reference a file whatever else it says (``model.safetensors``).
WEIGHTS_SUFFIXES = (".safetensors", ".pt")

#: What a sha256 mismatch advises when the caller has nothing more specific.
_REFETCH = "download or train it again"


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


def names_a_file(text: str) -> bool:
    """Whether a weights reference is a file by its spelling: a folder separator or a weights suffix.

    A reference that is not (``mnist-mr3-awgn``) is a shipped name, or a file only when no shelf
    has that name and the file exists (:func:`resolve_weights`).
    """
    return "/" in text or "\\" in text or Path(text).suffix in WEIGHTS_SUFFIXES


class Shelf:
    """Weights that ship inside semcom under names: ``folder()/NAME.safetensors``, its card beside it.

    Subclasses say where the folder is (:meth:`folder`) and what an unknown name is told
    (:meth:`unknown`); by default the names are the weights files present, and a name's card is
    optional. A shelf whose names are registered ahead of their files (the zoo) overrides
    :meth:`names` and :meth:`locate`.
    """

    def folder(self) -> Path:
        """The folder of the shipped files (looked up at each use)."""
        raise NotImplementedError

    def unknown(self, name: str) -> SemcomError:
        """The error for a name this shelf does not hold (it lists the names)."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """The names this shelf answers to."""
        return sorted(p.stem for p in self.folder().glob("*.safetensors"))

    def weights(self, name: str) -> Path:
        """``folder()/NAME.safetensors`` (it may not exist)."""
        return self.folder() / f"{name}.safetensors"

    def locate(self, name: str) -> Path:
        """The weights file of shipped ``name``; :meth:`unknown`'s error if there is none."""
        path = self.weights(name)
        if name not in self.names() or not path.is_file():
            raise self.unknown(name)
        return path


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file found for a shipped name or a path; its card and sha256 are read once, when asked.

    Attributes:
        path: the weights file (it existed when resolved).
        source: ``"shipped"`` (a name on a :class:`Shelf`) or ``"file"``.
        name: the shipped name, or the file's stem (what results call the model by default).
    """

    path: Path
    source: Literal["shipped", "file"]
    name: str

    @cached_property
    def card(self) -> dict[str, Any]:
        """The card beside the file, ``{}`` when there is none."""
        return load_card(self.path) if card_path(self.path).is_file() else {}

    @cached_property
    def sha256(self) -> str:
        """Hex sha256 of the weights file."""
        return sha256_file(self.path)

    def verify(self, advice: str = _REFETCH) -> dict[str, Any]:
        """The card, after checking the file's sha256 against it.

        Weights that cannot be verified (no card, or a card without a sha256) are refused unless the
        user opted in (``semcom --allow-unverified``), and then loaded with a :class:`SemcomWarning`.

        Raises ``CheckpointError`` on a mismatch (``advice`` says what to do about it) or on weights
        that cannot be verified.
        """
        want = self.card.get("sha256")
        if not want:
            card = card_path(self.path)
            why = f"its card {card.name} has no sha256" if self.card else f"there is no card {card.name} beside it"
            if not allowed(ALLOW_UNVERIFIED_ENV):
                raise CheckpointError(f"{self.path}: cannot be verified ({why}); if you trust this file, run "
                                      f"semcom --allow-unverified ... (or set {ALLOW_UNVERIFIED_ENV}=1)")
            warnings.warn(f"{self.path}: loaded without verification ({why})", SemcomWarning, stacklevel=2)
            return self.card
        if self.sha256 != want:
            raise CheckpointError(f"{self.path}: sha256 does not match its card {card_path(self.path).name} "
                                  f"(file corrupt or replaced); {advice}")
        return self.card

    def read(self, meta_key: str, what: str, fmt: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
        """:func:`read_tensors` of this file."""
        return read_tensors(self.path, meta_key, what, fmt)


def resolve_weights(
    source: str | Path,
    shelf: Shelf | None = None,
    base_dir: str | Path | None = None,
    what: str = "checkpoint",
) -> ResolvedWeights:
    """The weights file that ``source`` names: a name on ``shelf``, or a file.

    The rule: a ``Path``, or a text that :func:`names_a_file`, is a file; any other text is the
    shelf's when the shelf has that name, else a file when one exists, else an unknown name. Files
    are taken relative to ``base_dir`` (default: the working folder). Nothing is read yet.

    Raises:
        CheckpointError: ``"{path}: {what} not found"``, or the shelf's missing files.
        SemcomError: the shelf's error for an unknown name (the zoo: ``UnknownNameError``).
    """
    text = str(source)
    base = Path() if base_dir is None else Path(base_dir)
    if shelf is not None and not isinstance(source, Path) and not names_a_file(text):
        if text in shelf.names():
            return ResolvedWeights(shelf.locate(text), "shipped", text)
        if not (base / text).is_file():
            raise shelf.unknown(text)
    path = base / source
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    return ResolvedWeights(path, "file", path.stem)


def fill_module(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path, built_from: str) -> None:
    """``module.load_state_dict(state, strict=True)``; tensors that do not fit ``module`` (built from
    ``built_from``, e.g. "the architecture in its metadata") are one :class:`CheckpointError` naming the file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit {built_from} ({first})") from None


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
