"""benchmarks/bench.py end to end on CPU with the tiny config: a record, then an --append that adds a line and
reuses the first call's plain loop, then the appends it must refuse (a line it already holds, other overrides),
each leaving the record as it was."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "configs/tiny-cpu.yaml", "--epochs", "2",
         "--plain-steps", "3", "--micro-batches", "2", "--no-agreement"]


def _bench(tmp_path, *args):
    env = {**os.environ, "NLI_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([*BENCH, "--out", str(tmp_path / "out"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    got = _bench(tmp, "--ladder", "default")
    assert got.returncode == 0, got.stderr[-2000:]
    (record,) = (tmp / "out").glob("tiny-cpu-*.json")
    return tmp, record


def test_an_append_adds_its_line_and_reuses_the_plain_loop(first):
    tmp, path = first
    before = json.loads(path.read_text())
    # --ladder default: the default line and its opt-in (bfloat16 LayerNorm), after the plain loop
    assert [(r["loop"], r["switches"]["key"] if "switches" in r else None) for r in before["results"]] == \
        [("plain", None), ("pipeline", "default"), ("pipeline", "bf16-norms")]
    plain = before["results"][0]
    assert plain["losses"], "the plain loop's losses are kept for a later call's loss agreement"

    got = _bench(tmp, "--ladder", "padded", "--append", str(path))
    assert got.returncode == 0, got.stderr[-2000:]
    after = json.loads(path.read_text())
    assert [r["loop"] for r in after["results"]] == ["plain", "pipeline", "pipeline", "pipeline"]  # one plain loop
    assert after["results"][:3] == before["results"]
    assert after["results"][3]["switches"]["key"] == "padded"
    assert [a["command"].split("--ladder ")[1].split()[0] for a in after["appended"]] == ["padded"]
    assert after["created"] == before["created"] and after["wall_seconds"] > before["wall_seconds"]


def test_an_append_of_a_line_the_record_holds_is_refused_and_changes_nothing(first):
    tmp, path = first
    text = path.read_text()
    got = _bench(tmp, "--ladder", "default", "--append", str(path))
    assert got.returncode != 0
    assert "it already holds default at micro-batch 2" in got.stderr
    assert path.read_text() == text


def test_an_append_with_other_overrides_is_refused_and_changes_nothing(first):
    tmp, path = first
    text = path.read_text()
    got = _bench(tmp, "--ladder", "eager", "--set", "train.learning_rate=1.0e-3", "--append", str(path))
    assert got.returncode != 0
    assert "its overrides is [], this call's is ['train.learning_rate=1.0e-3']" in got.stderr
    assert path.read_text() == text


def test_a_bad_override_is_one_line_naming_the_field_and_writes_nothing(tmp_path):
    got = _bench(tmp_path, "--ladder", "default", "--set", "train.learning_rate=1e-3")
    assert got.returncode != 0
    assert "Traceback" not in got.stderr
    assert got.stderr.strip().splitlines() == [
        "error: configs/tiny-cpu.yaml: train.learning_rate: must be a number, got '1e-3' "
        "(write 2e-4 as 2.0e-4 so YAML reads a number)"]
    assert not (tmp_path / "out").exists()


def test_the_plain_loop_leaves_no_tensor_alive_for_the_next_line_to_carry(tmp_path, monkeypatch):
    # its model lived on in reference cycles until some later gc pass: on a GPU its 4-bit weights were still
    # allocated while the next line ran, and counted in that line's peak
    import gc
    import tempfile

    import torch

    import benchmarks.bench as bench
    from pipeline.run import Runner
    from records.config_reading import load_config
    monkeypatch.setenv("NLI_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    sets = [f"output.results_dir={tmp_path}/results", f"output.checkpoint_dir={tmp_path}/ckpt"]
    cfg = load_config("configs/tiny-cpu.yaml", sets)
    runner = Runner(cfg, "configs/tiny-cpu.yaml", tuple(sets))
    runner.run(["data"])
    ctx = bench.Context(cfg, runner.ctx, tempfile.mkdtemp(dir=tmp_path))

    def live_tensors() -> int:
        import warnings
        with warnings.catch_warnings():  # isinstance on every live object touches deprecated torch shims too
            warnings.simplefilter("ignore")
            return sum(isinstance(o, torch.Tensor) for o in gc.get_objects())

    bench.run_plain(ctx, cfg, 2, 3, 1)  # a first call: what stays for good (caches made once) stays from here
    gc.collect()
    before = live_tensors()
    gc.disable()  # no collection may happen between the call's return and the count
    try:
        row, losses = bench.run_plain(ctx, cfg, 2, 3, 1)
        assert row["loop"] == "plain" and losses
        assert live_tensors() <= before
    finally:
        gc.enable()
