"""The course notebooks as files: what the tests' execution of them (nbmake) cannot see.

nbmake runs every notebook under ``notebooks/`` top to bottom (a failing cell fails the suite); these
checks hold the files to the course's rules: outputs cleared in git, figures that display in Jupyter
(no forced non-interactive backend), exercises at the end, offline data only, no machine's paths.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE = ["01_channels", "02_the_cliff", "03_multi_resolution_multi_user", "04_semantic_receivers",
          "05_train_your_own"]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def test_the_course_is_complete() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == COURSE


@pytest.mark.parametrize("name", COURSE)
def test_notebook_is_committed_clean(name: str) -> None:
    path = NOTEBOOKS / f"{name}.ipynb"
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["metadata"]["kernelspec"]["name"] == "python3"
    for cell in doc["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name}: clear the outputs"


@pytest.mark.parametrize("name", COURSE)
def test_notebook_follows_the_course_rules(name: str) -> None:
    cells = _cells(NOTEBOOKS / f"{name}.ipynb")
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    text = "\n".join(_source(c) for c in cells)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# ")
    # figures must show in Jupyter; the kernel's inline backend also works headless
    assert not re.search(r"matplotlib\.use\(|MPLBACKEND", code)
    headings = [line for c in cells if c["cell_type"] == "markdown" for line in _source(c).splitlines()
                if line.startswith("## ")]
    assert any(h.lower().startswith("## exercises") for h in headings), f"{name}: no exercises section"
    assert "assert " in code, f"{name}: a notebook checks what it teaches"
    # offline and portable: the shipped sample, no development paths
    assert not re.search(r"/work/|/root/|/home/|\.\./shared|cifar-10-batches", text)
    assert "download" not in code.lower()
