"""docs/guide.md works as written: its examples run, its reference is the schema's, its links resolve.

Every ```python block runs, in order, in one fresh Python process (a later block may use what an
earlier one defined), in a temporary folder; every ```bash block whose fence says ``runnable`` runs
in bash there, with ``semcom`` being this Python's ``python -m semcom``. They use the offline
mnist-sample with small sizes, so they need no data root and no network.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from semcom.scenarios.reference import current_reference, scenario_reference

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.M | re.S)


def _blocks(language: str, marker: str | None = None) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return [body for lang, info, body in FENCE.findall(text)
            if lang == language and (marker is None or marker in info.split())]


def _env(tmp_path: Path) -> dict[str, str]:
    """This Python first on PATH as ``semcom``; this checkout first on the import path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "semcom"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m semcom "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "80"
    return env


def test_the_reference_section_is_the_schemas() -> None:
    assert current_reference(GUIDE.read_text(encoding="utf-8")) == scenario_reference(), (
        "docs/guide.md's scenario reference is out of date: python -m semcom.scenarios.reference --write "
        "docs/guide.md")


def test_the_guide_links_resolve() -> None:
    text = FENCE.sub("", GUIDE.read_text(encoding="utf-8"))  # the prose, not the code
    links = re.findall(r"\]\(([^)#\s]+)\)", text)
    assert links
    for link in links:
        if "://" not in link:
            assert (GUIDE.parent / link).is_file(), f"docs/guide.md links to {link}, which does not exist"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/guide.md)" in readme, "the README's documentation list links the guide"


def test_every_command_in_the_guide_exists() -> None:
    from typer.testing import CliRunner

    from semcom.cli.app import app

    commands = {m.group(1) for block in _blocks("bash") for m in re.finditer(r"^semcom (\S+)", block, re.M)}
    assert {"run", "validate", "show", "models", "train-receiver"} <= commands
    for command in sorted(commands - {"--help"}):
        res = CliRunner().invoke(app, [command, "--help"])
        assert res.exit_code == 0, f"semcom {command}: {res.output}"


@pytest.mark.slow
def test_the_guides_python_examples_run(tmp_path: Path) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 5
    script = "\n\n".join(f"# --- block {i + 1}\n{body}" for i, body in enumerate(blocks))
    (tmp_path / "guide_examples.py").write_text(script, encoding="utf-8")
    proc = subprocess.run([sys.executable, "guide_examples.py"], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "{'images': 20, 'snr_db': {'rx': [0.0, 20.0]}}" in out
    assert re.search(r"^   0 dB: PSNR \d+\.\d\d dB, outage 100%$", out, re.M)  # the toy codec's cliff
    assert re.search(r"^  20 dB: PSNR \d+\.\d\d dB, outage 0%$", out, re.M)
    assert "['class@1', 'class@2']" in out


@pytest.mark.slow
def test_the_guides_runnable_commands_run(tmp_path: Path) -> None:
    blocks = _blocks("bash", "runnable")
    assert len(blocks) >= 2
    script = "set -euo pipefail\n" + "\n".join(blocks)
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "results" / "small" / "results.json").is_file()
    assert "size     20 images x 2 points" in proc.stdout and "Training command" in proc.stdout
