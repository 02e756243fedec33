"""The results table: rows, CSV and JSON files (written atomically), provenance metadata.

One row per (system, user, layer, SNR point). ``results.csv`` holds the rows; ``results.json`` the
same rows plus the metadata that makes them reproducible (versions, git commit, seed, the scenario
text and its sha256, checkpoint checksums, timing). NaN is written ``nan`` in CSV and ``null`` in
JSON (strict JSON has no NaN); :func:`load_results` turns it back into NaN.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from semcom.errors import SemcomError
from semcom.provenance import library_versions

__all__ = [
    "COLUMNS",
    "CSV_NAME",
    "FLOAT_COLUMNS",
    "JSON_NAME",
    "atomic_write",
    "atomic_write_text",
    "git_info",
    "jsonable",
    "library_versions",
    "load_results",
    "nan_floats",
    "rows_to_csv",
    "write_results",
]

CSV_NAME = "results.csv"
JSON_NAME = "results.json"
FORMAT = "semcom-results/1"

#: Columns of the table, in order.
COLUMNS = [
    "system", "kind", "user", "layer", "symbols", "point", "snr_db", "sweep_snr_db", "images", "draws", "samples",
    "psnr_mean", "psnr_std", "psnr_ci95", "psnr_pooled",
    "ssim_mean", "ssim_std", "ssim_ci95",
    "ms_ssim_mean", "ms_ssim_std", "ms_ssim_ci95",
    "accuracy", "accuracy_std", "accuracy_ci95",
    "outage_rate", "outage_ci95",
    "info",
]
FLOAT_COLUMNS = frozenset(c for c in COLUMNS if c not in
                          ("system", "kind", "user", "layer", "symbols", "point", "images", "draws", "samples",
                           "info"))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    A reader (or a resumed run) sees the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); results are for sharing, so give it the mode a plain
    # open() would: 0666 minus the umask (read for others on a shared course server with umask 022)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def jsonable(value: Any) -> Any:
    """``value`` with NaN/inf floats as None, tuples as lists (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _csv_cell(column: str, value: Any) -> str:
    if column == "info":
        return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":")) if value else ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return "" if value is None else str(value)


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV text (header first; floats with full precision)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(c, row.get(c)) for c in COLUMNS])
    return buf.getvalue()


def write_results(out_dir: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.json`` into ``out_dir``; return their paths."""
    csv_path, json_path = out_dir / CSV_NAME, out_dir / JSON_NAME
    atomic_write_text(csv_path, rows_to_csv(rows))
    doc = {"format": FORMAT, **meta, "columns": COLUMNS, "rows": list(rows)}
    atomic_write_text(json_path, json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n")
    return csv_path, json_path


def load_results(source: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(rows, metadata)`` from a results folder or its ``results.json``.

    Raises:
        SemcomError: no results there, or not a semcom results file.
    """
    path = Path(source)
    if path.is_dir():
        path = path / JSON_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SemcomError(f"{path}: no results here (run `semcom run SCENARIO --out DIR` first)") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SemcomError(f"{path}: not a readable results file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("rows"), list):
        raise SemcomError(f"{path}: not a semcom results file (format {FORMAT})")
    rows = [nan_floats(r) for r in doc["rows"]]
    meta = {k: v for k, v in doc.items() if k not in ("rows", "columns")}
    return rows, meta


def nan_floats(row: dict[str, Any]) -> dict[str, Any]:
    """A row read from JSON with its missing numbers (null) as NaN again."""
    return {k: (math.nan if v is None and k in FLOAT_COLUMNS else v) for k, v in row.items()}


def git_info(where: Path | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout semcom runs from, or None outside one."""
    where = where or Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}
