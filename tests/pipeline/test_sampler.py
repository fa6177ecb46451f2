"""ResourceSampler on CPU: schema, stage tags, timing, nulls for what is not measured, RSS, failures."""
import logging
import subprocess
import sys
import time
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.telemetry.environment import nvml_module
from pipeline.telemetry.sampler import CUDA_PEAK_KEYS, ResourceSampler
from records.schema import TABLES
from tests.conftest import ROOT

SCHEMA = TABLES["resources"]
GPU_COLS = ["gpu_util_pct", "gpu_mem_used_bytes"]
TORCH_COLS = ["torch_allocated_bytes", "torch_reserved_bytes"]
HOST_COLS = ["process_rss_bytes", "system_ram_used_bytes", "disk_used_bytes"]


def _nvml_present() -> bool:
    pynvml = nvml_module()
    if pynvml is None:
        return False
    pynvml.nvmlShutdown()
    return True


def _torch_cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_initialized()


@pytest.fixture
def sampler(tmp_path):
    s = ResourceSampler(interval_s=0.02, disk_path=tmp_path / "checkpoints")  # does not exist yet
    yield s
    s.close()


def test_rows_have_exactly_the_schema_columns_and_types(sampler):
    with sampler.stage("train"):
        time.sleep(0.15)
    df = sampler.frame("train")
    assert list(df.columns) == SCHEMA.names
    assert len(df) >= 4  # entry + exit + a few from the thread
    assert pd.api.types.is_string_dtype(df["stage"])
    for col in SCHEMA.names[1:-3]:  # not the tags: rank, gpu_index, attempt
        assert df[col].dtype == np.float64, col
    # who sampled: this process (rank 0 of one), and no GPU index on a CPU-only machine
    assert (df["rank"] == 0).all() and df["gpu_index"].isna().all()
    assert (df["attempt"] == 1).all()  # a stage entered without an attempt number is the first
    # What the store writes: converts to the declared arrow schema without loss.
    table = pa.Table.from_pandas(df, schema=SCHEMA, preserve_index=False)
    assert table.schema.equals(SCHEMA)
    for col in HOST_COLS:
        assert df[col].notna().all() and (df[col] > 0).all(), col
    cpu = df["cpu_pct"].dropna()
    assert len(cpu) >= 1 and cpu.between(0, 100).all()
    # An unknown stage gives an empty frame with the same columns and types.
    empty = sampler.frame("nope")
    assert list(empty.columns) == SCHEMA.names and len(empty) == 0
    assert empty["time"].dtype == np.float64


def test_stage_tags_time_and_elapsed(sampler):
    t0 = time.time()
    with sampler.stage("data"):
        time.sleep(0.08)
    with sampler.stage("train"):
        time.sleep(0.08)
        with sampler.stage("checkpoint"):  # nested: rows go to the innermost stage
            time.sleep(0.05)
        time.sleep(0.05)
    all_rows = sampler.frame()
    assert set(all_rows["stage"]) == {"data", "train", "checkpoint"}
    assert all_rows["stage"].drop_duplicates().tolist() == ["data", "train", "checkpoint"]
    assert all_rows["time"].is_monotonic_increasing
    assert all_rows["time"].iloc[0] >= t0 - 1
    for name in ("data", "train", "checkpoint"):
        df = sampler.frame(name)
        assert (df["stage"] == name).all()
        assert len(df) >= 2
        assert df["elapsed_s"].iloc[0] == pytest.approx(0, abs=0.05)  # the entry sample
        assert df["elapsed_s"].is_monotonic_increasing
        assert (df["elapsed_s"] >= 0).all()
    train = sampler.frame("train")
    assert train["elapsed_s"].iloc[-1] >= 0.15  # exit sample, measured from the stage's start
    assert sampler.peaks("train")["elapsed_s"] == train["elapsed_s"].max()


def test_short_stage_has_entry_and_exit_rows(tmp_path):
    s = ResourceSampler(interval_s=30, disk_path=tmp_path)  # the thread never gets a turn
    try:
        with s.stage("params"):
            pass
        df = s.frame("params")
        assert len(df) == 2
        assert df["elapsed_s"].iloc[1] >= df["elapsed_s"].iloc[0]
    finally:
        s.close()


def test_missing_measurements_are_null_not_zero(sampler):
    with sampler.stage("baseline"):
        time.sleep(0.05)
    df = sampler.frame("baseline")
    peaks = sampler.peaks("baseline")
    if not _nvml_present():  # this CPU machine: no NVIDIA driver
        for col in GPU_COLS:
            assert df[col].isna().all(), col
            assert peaks[col] is None
    else:
        assert df["gpu_mem_used_bytes"].notna().all()
    if not _torch_cuda_initialised():
        for col in TORCH_COLS:
            assert df[col].isna().all(), col
            assert peaks[col] is None
        for key in CUDA_PEAK_KEYS:
            assert peaks[key] is None


def test_rss_grows_with_a_big_array_and_the_peak_shows_it(sampler):
    size = 300 * 2**20
    with sampler.stage("before"):
        time.sleep(0.05)
    with sampler.stage("alloc"):
        block = np.ones(size, dtype=np.uint8)  # np.ones writes every page: resident, not just reserved
        time.sleep(0.1)
        assert block[-1] == 1
    del block
    before = sampler.peaks("before")["process_rss_bytes"]
    during = sampler.peaks("alloc")["process_rss_bytes"]
    assert during >= before + 0.8 * size
    df = sampler.frame("alloc")
    assert df["process_rss_bytes"].max() == during
    assert df["process_rss_bytes"].iloc[-1] >= before + 0.8 * size  # the exit row still holds it
    assert sampler.peaks("alloc")["system_ram_used_bytes"] >= sampler.peaks("before")["system_ram_used_bytes"]


def test_stage_body_that_raises(sampler):
    with pytest.raises(RuntimeError, match="boom"):
        with sampler.stage("evaluate"):
            time.sleep(0.03)
            raise RuntimeError("boom")
    df = sampler.frame("evaluate")
    assert len(df) >= 2  # the exit sample was still taken
    assert sampler.running
    n = len(sampler.frame())
    time.sleep(0.1)  # no open stage: the thread records nothing
    assert len(sampler.frame()) == n
    with sampler.stage("evaluate"):  # re-entering appends; elapsed continues from the first entry
        pass
    again = sampler.frame("evaluate")
    assert len(again) >= len(df) + 2
    assert again["elapsed_s"].is_monotonic_increasing


def test_close_stops_the_thread(tmp_path):
    s = ResourceSampler(interval_s=0.01, disk_path=tmp_path)
    assert not s.running
    with s.stage("train"):
        time.sleep(0.05)
        thread = s._thread
        assert thread is not None and thread.is_alive() and thread.daemon
    s.close()
    assert not thread.is_alive()
    assert not s.running
    rows = len(s.frame("train"))
    assert rows >= 2  # rows stay readable after close
    s.close()  # idempotent
    with ResourceSampler(interval_s=0.01, disk_path=tmp_path) as s2:
        with s2.stage("x"):
            pass
    assert not s2.running


def test_a_failing_probe_becomes_null_and_is_logged_once(sampler, caplog):
    def broken():
        raise OSError("disk went away")

    sampler._disk_used = broken
    with caplog.at_level(logging.WARNING, logger="pipeline.telemetry.sampler"):
        with sampler.stage("train"):
            time.sleep(0.1)
    df = sampler.frame("train")
    assert len(df) >= 3
    assert df["disk_used_bytes"].isna().all()
    assert df["process_rss_bytes"].notna().all()  # the other probes go on
    assert sampler.running
    assert sum("disk went away" in r.getMessage() for r in caplog.records) == 1


def test_arguments_are_checked():
    with pytest.raises(ValueError):
        ResourceSampler(interval_s=0)
    s = ResourceSampler(interval_s=0.5)
    with pytest.raises(ValueError):
        with s.stage(""):
            pass
    s.close()


class _FakeCuda:
    """torch.cuda's memory API as the sampler uses it, driven by the test."""

    def __init__(self):
        self.current = 0.0
        self.peak = 0.0
        self.resets = 0

    def is_initialized(self):
        return True

    def current_device(self):
        return 0

    def get_device_properties(self, index):
        raise RuntimeError("no device in this fake")

    def memory_stats(self, device=None):
        return {"allocated_bytes.all.current": self.current, "allocated_bytes.all.peak": self.peak,
                "reserved_bytes.all.current": self.current * 2, "reserved_bytes.all.peak": self.peak * 2}

    def reset_peak_memory_stats(self, device=None):
        self.resets += 1
        self.peak = self.current

    def alloc(self, n):
        self.current = n
        self.peak = max(self.peak, n)


def test_cuda_peak_catches_what_samples_miss(monkeypatch, tmp_path):
    cuda = _FakeCuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    s = ResourceSampler(interval_s=30, disk_path=tmp_path, gpu=False)  # only entry/exit samples
    try:
        cuda.alloc(9.5e9)
        cuda.alloc(0.5e9)  # a peak before the stage must not count
        with s.stage("train"):
            assert cuda.resets == 1
            cuda.alloc(1e9)
            cuda.alloc(9e9)  # a short peak between samples
            cuda.alloc(2e9)
            with s.stage("inner"):  # resets the counter again: the outer stage keeps its peak
                cuda.alloc(3e9)
            cuda.alloc(2e9)
        df = s.frame("train")
        assert df["torch_allocated_bytes"].max() == 2e9
        assert df["torch_reserved_bytes"].iloc[-1] == 4e9
        peaks = s.peaks("train")
        assert peaks["torch_max_allocated_bytes"] == 9e9
        assert peaks["torch_max_reserved_bytes"] == 18e9
        assert s.peaks("inner")["torch_max_allocated_bytes"] == 3e9
    finally:
        s.close()


def test_never_imports_torch():
    code = (
        "import sys, pipeline.telemetry.sampler as p\n"
        "s = p.ResourceSampler(interval_s=0.01)\n"
        "with s.stage('x'):\n"
        "    pass\n"
        "s.close()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert s.frame('x')['torch_allocated_bytes'].isna().all()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
