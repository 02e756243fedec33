"""The Ray backend runs the local runner's work units: the same table as a serial run, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semcom.scenarios import parse_scenario, run_scenario

ray = pytest.importorskip("ray")  # an optional extra for users; the dev install has it

SCENARIO = """\
name: ray-check
seed: 5
draws: 2
batch_size: 40
dataset: {name: mnist-sample, images: 80}
systems:
  - {name: jscc, type: jscc, model: mnist-mr3-awgn}
  - {name: linear, type: linear, code: mnist-mr3-awgn}
channel: {type: rayleigh}
users:
  - {name: near, snr_db: [0, 5, 10, 15], resolution: 3}
  - {name: far, snr_db: 2, resolution: 1}
"""


@pytest.mark.slow
def test_ray_gives_the_serial_table_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "ray.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    sc = parse_scenario(SCENARIO, path)
    serial = run_scenario(sc, tmp_path / "serial")
    cut: list[int] = []

    def stop_after_two(result: object) -> None:
        cut.append(1)
        if len(cut) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_scenario(sc, tmp_path / "ray", backend="ray", workers=2, on_point=stop_after_two)
    resumed = run_scenario(sc, tmp_path / "ray", backend="ray", workers=2)
    assert json.dumps(resumed.rows, default=str) == json.dumps(serial.rows, default=str)
    assert (tmp_path / "ray" / "results.csv").read_text() == (tmp_path / "serial" / "results.csv").read_text()
    assert len(resumed.metadata["timing"]["resumed_points"]) == 2
    assert not ray.is_initialized()  # the local Ray of the run is stopped
