"""Resource samples reach disk as they are taken (issue 20): a stage killed mid-way leaves its samples in
resources.<stage>.part; the attempt that resumes it seals them into the table beside its own, numbered by
attempt, and the part file goes. A stage run afresh (--restart) keeps no earlier rows."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from records.integrity import check
from records.store import RunStore
from tests.conftest import cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"
pytestmark = pytest.mark.slow


def _run(tmp_path, *extra, env=None):
    ov = tiny_overrides(tmp_path, "parts") + ["train.epochs=2", "runtime.sample_interval_s=0.05", *extra]
    return cli("run", CONFIG, *sets(ov), "--stages", "data,train", env=env)


def test_a_killed_stage_keeps_its_samples_and_the_resumed_one_marks_them(tmp_path):
    r = _run(tmp_path, "train.checkpoint_every_steps=10", env={"PIPELINE_KILL_AFTER_STEP": "25"})
    assert r.returncode == -9
    folder = tmp_path / "results" / "parts"
    part = folder / "resources.train.part"
    lines = part.read_text().splitlines()
    assert len(lines) >= 2 and all(json.loads(x)[0] == "train" for x in lines)
    killed = RunStore(folder).read_part("resources", "train")
    assert len(killed) == len(lines) and set(killed["attempt"]) == {1}
    assert killed["process_rss_bytes"].notna().all()
    with part.open("a") as f:
        f.write('["train", 1.0, 0.')  # a row the kill cut short: dropped, not an error
    assert len(RunStore(folder).read_part("resources", "train")) == len(lines)

    r = _run(tmp_path, "train.checkpoint_every_steps=10")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not part.exists()
    res = pd.read_parquet(folder / "resources.parquet")
    train = res[res["stage"] == "train"]
    first = train[train["attempt"] == 1].reset_index(drop=True)
    assert len(first) == len(killed)
    pd.testing.assert_frame_equal(first, killed.reset_index(drop=True), check_dtype=False)
    assert (train["attempt"] == 2).sum() >= 2
    assert set(res[res["stage"] == "data"]["attempt"]) == {1}  # done before the kill: not run again
    m = RunStore(folder).manifest()
    assert not check(folder, m)  # the sealed table is as the manifest records it

    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path, "parts") + ["train.epochs=2"]), "--stages", "data,train",
            "--restart")
    assert r.returncode == 0, r.stderr[-2000:]
    res = pd.read_parquet(folder / "resources.parquet")
    assert set(res["attempt"]) == {1}
