"""Faults a real user meets, through the real command line: interruptions, kills, a full disk, broken
files and hostile scenario files.

Each case checks the two promises of docs/security.md: a user error is one ``error:`` line (no
traceback) with exit code 1, and no finished work is lost (a rerun resumes and gives exactly the
table of an uninterrupted run).
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "semcom" / "zoo" / "weights"

# 24 points of two real systems: a cut among the first third leaves the run far from its end, so a
# busy machine cannot let it finish before the signal arrives.
SCENARIO = """\
name: faults
seed: 3
draws: 2
batch_size: 50
dataset: {name: mnist-sample, images: 150}
systems:
  - {name: jscc, type: jscc, model: MODEL}
  - {name: linear, type: linear, code: mnist-mr3-awgn}
channel: {type: rayleigh}
users:
  - {name: rx, snr_db: {start: 0, stop: 23, step: 1}, resolution: 3}
"""
POINTS = 24


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SEMCOM_DEBUG"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "semcom", *map(str, args)]


def _semcom(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(*args), capture_output=True, text=True, env=_env(), timeout=300, **kwargs)


def _start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def assert_one_error_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code 1, no traceback, exactly one ``error:`` line, and it contains ``words``."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def _scenario(folder: Path, model: str = "mnist-mr3-rayleigh", text: str = SCENARIO) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "faults.yaml"
    path.write_text(text.replace("MODEL", model), encoding="utf-8")
    return path


def _partials(out: Path) -> int:
    return len(list((out / "partial").glob("point-*.json"))) if (out / "partial").is_dir() else 0


def _wait_for_points(proc: subprocess.Popen[str], out: Path, count: int, limit: float = 240.0) -> None:
    end = time.monotonic() + limit
    while _partials(out) < count:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {count} points: "
                        f"{proc.stderr.read() if proc.stderr else ''}{sorted(p.name for p in out.rglob('*'))}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"no {count} points within {limit} s")
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The scenario and the CSV of one uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    scenario = _scenario(folder)
    done = _semcom("run", scenario, "--out", folder / "out", "--quiet")
    assert done.returncode == 0, done.stderr
    return scenario, (folder / "out" / "results.csv").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_sigint_at_a_random_point_then_resume(reference: tuple[Path, str], tmp_path: Path, seed: int) -> None:
    scenario, table = reference
    out = tmp_path / "out"
    cut = random.Random(seed).randint(1, POINTS // 3)
    proc = _start("run", scenario, "--out", out, "--quiet")
    _wait_for_points(proc, out, cut)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (out / "results.csv").exists()
    assert _partials(out) >= cut

    resumed = _semcom("run", scenario, "--out", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.csv").read_text(encoding="utf-8") == table
    resumed_points = json.loads((out / "results.json").read_text())["timing"]["resumed_points"]
    assert len(resumed_points) >= cut


@pytest.mark.slow
def test_sigkill_with_workers_leaves_no_process_and_resumes(reference: tuple[Path, str], tmp_path: Path) -> None:
    scenario, table = reference
    out = tmp_path / "out"
    proc = _start("run", scenario, "--out", out, "--quiet", "--workers", "2")
    _wait_for_points(proc, out, 2)
    family = _children(proc.pid)
    family += [grandchild for child in family for grandchild in _children(child)]
    assert family, "the run with --workers 2 has no child processes"
    proc.kill()
    proc.communicate(timeout=180)
    end = time.monotonic() + 90
    while any(_alive(pid) for pid in family) and time.monotonic() < end:
        time.sleep(0.2)
    left = [pid for pid in family if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the killed run: {left}"

    resumed = _semcom("run", scenario, "--out", out, "--quiet")  # the dead run's lock is taken over
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "results.csv").read_text(encoding="utf-8") == table


def _limit_file_size(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.slow
def test_a_full_disk_is_one_error_and_loses_no_point(reference: tuple[Path, str], tmp_path: Path) -> None:
    """A file-size limit stands in for a full disk: the points fit (each partial file, with its kept
    reconstructions, is about 40 kB), the result files do not (the reconstructions of all points)."""
    scenario, table = reference
    out = tmp_path / "out"
    full = subprocess.run(_command("run", scenario, "--out", out, "--quiet"), capture_output=True, text=True,
                          env=_env(), timeout=300, preexec_fn=lambda: _limit_file_size(100_000))
    assert_one_error_line(full, "File too large")
    assert _partials(out) == POINTS
    again = _semcom("run", scenario, "--out", out, "--quiet")
    assert again.returncode == 0, again.stderr
    assert (out / "results.csv").read_text(encoding="utf-8") == table
    assert json.loads((out / "results.json").read_text())["timing"]["resumed_points"] == list(range(POINTS))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_error(reference: tuple[Path, str], tmp_path: Path) -> None:
    scenario, _ = reference
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert_one_error_line(_semcom("run", scenario, "--out", out, "--quiet"), str(out))
    finally:
        out.chmod(0o755)


# -- broken files ---------------------------------------------------------------------------------


def _copy_model(folder: Path, name: str = "mnist-mr3-rayleigh") -> tuple[Path, Path]:
    weights = folder / "model.safetensors"
    card = folder / "model.json"
    shutil.copy(ZOO / f"{name}.safetensors", weights)
    shutil.copy(ZOO / f"{name}.json", card)
    return weights, card


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "words"), [
    (lambda w, c: _truncate(w), ["model.safetensors"]),
    (lambda w, c: _flip_a_byte(w), ["model.safetensors", "sha256"]),
    (lambda w, c: c.write_text("{not json"), ["model.json"]),
    (lambda w, c: _truncate(c), ["model.json"]),
], ids=["truncated-weights", "corrupted-weights", "broken-card", "truncated-card"])
def test_broken_weights_and_cards_are_one_error(tmp_path: Path, damage, words: list[str]) -> None:
    weights, card = _copy_model(tmp_path)
    damage(weights, card)
    scenario = _scenario(tmp_path, model="./model.safetensors")
    for command in ("validate", "run"):
        args = [command, scenario] + (["--out", tmp_path / "out", "--quiet"] if command == "run" else [])
        proc = _semcom(*args)
        if command == "validate" and proc.returncode == 0:
            continue  # validate may check only the file's presence; run must refuse it
        assert_one_error_line(proc, *words)


def _tiny_mnist(root: Path, count: int = 64) -> Path:
    """Official-format MNIST files (gzip IDX) holding ``count`` random images per split."""
    import numpy as np

    from semcom.data.formats import write_idx

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, dtype=np.uint8))
    return root


def test_broken_dataset_files_are_one_error(tmp_path: Path) -> None:
    root = _tiny_mnist(tmp_path / "data")
    _truncate(root / "t10k-images-idx3-ubyte.gz")
    text = SCENARIO.replace("{name: mnist-sample, images: 150}", "{name: mnist, images: 10}")
    scenario = _scenario(tmp_path, text=text)
    proc = _semcom("run", scenario, "--out", tmp_path / "out", "--quiet", "--data-root", root)
    assert_one_error_line(proc, "t10k-images-idx3-ubyte.gz")


def test_a_corrupted_partial_result_is_one_error(reference: tuple[Path, str], tmp_path: Path) -> None:
    scenario, _ = reference
    out = tmp_path / "out"
    proc = _start("run", scenario, "--out", out, "--quiet")
    _wait_for_points(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    partial = sorted((out / "partial").glob("point-*.json"))[0]
    _truncate(partial)
    assert_one_error_line(_semcom("run", scenario, "--out", out, "--quiet"), partial.name, "--fresh")


def test_a_broken_training_state_is_one_error(tmp_path: Path) -> None:
    root = _tiny_mnist(tmp_path / "data")
    run = tmp_path / "run"
    tiny = ["--dataset", "mnist", "--data-root", root, "--out", run, "--layers", "1", "--enc-width", "4",
            "--dec-width", "4", "--validation", "12", "--eval-count", "12", "--final-eval-count", "12",
            "--batch-size", "32", "--no-progress"]
    first = _semcom("train", *tiny, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    state = run / "latest.train.pt"
    assert state.exists()
    _truncate(state)
    proc = _semcom("train", *tiny, "--epochs", "2", "--resume")
    line = assert_one_error_line(proc, "latest.train.pt")
    assert "weights_only" not in proc.stderr and "weights_only" not in line


# -- hostile scenario files -------------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))

HOSTILE = {
    "alias-bomb": (ALIAS_BOMB, ["alias"]),
    "binary": (bytes(range(256)) * 8, ["faults.yaml"]),
    "deep-nesting": ("name: " + "[" * 5000 + "]" * 5000 + "\n", ["faults.yaml"]),
    "huge-images": (SCENARIO.replace("images: 150", "images: 1e400").replace("MODEL", "mnist-mr3-rayleigh"),
                    ["images"]),
    "huge-snr": (SCENARIO.replace("{start: 0, stop: 23, step: 1}", "1e308").replace("MODEL", "mnist-mr3-rayleigh"),
                 ["snr_db"]),
    "nan-snr": (SCENARIO.replace("{start: 0, stop: 23, step: 1}", ".nan").replace("MODEL", "mnist-mr3-rayleigh"),
                ["snr_db"]),
    "huge-draws": (SCENARIO.replace("draws: 2", "draws: 99999999999999999999999").replace("MODEL",
                                                                                         "mnist-mr3-rayleigh"),
                   ["draws"]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_scenario_files_are_one_error(tmp_path: Path, case: str) -> None:
    content, words = HOSTILE[case]
    path = tmp_path / "faults.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    # A memory cap turns an expanding alias bomb into a failure of this test, not of the machine.
    proc = subprocess.run(_command("validate", path), capture_output=True, text=True, env=_env(), timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)))
    assert_one_error_line(proc, "faults.yaml", *words)
