"""analysis.resources on a sampler table written out here: each stage's peaks and means, the whole-run peaks
(the sampler's moments against the exact torch peaks of epochs and manifest), the pause-cut timeline, the
memory-cap check at its boundary and the low-utilisation call."""
import math

import pandas as pd
import pytest

from analysis import resources as r

NAN = math.nan


def _samples():
    rows = []
    # stage, time, elapsed, gpu_mem, alloc, reserved, util, rss, ram, cpu, disk
    for st, t, el, alloc, util, cpu in (("train", 10.0, 1.0, 300, 40.0, 90.0), ("train", 11.0, 2.0, 500, NAN, 70.0),
                                        ("train", 12.0, 3.0, NAN, 60.0, 20.0), ("data", 0.0, 0.5, 100, NAN, 10.0),
                                        ("extra", 200.0, 1.0, NAN, NAN, NAN)):
        rows.append({"stage": st, "time": t, "elapsed_s": el, "gpu_mem_used_bytes": alloc and alloc * 2,
                     "torch_allocated_bytes": alloc, "torch_reserved_bytes": alloc * 3 if alloc == alloc else NAN,
                     "gpu_util_pct": util, "process_rss_bytes": 7.0, "system_ram_used_bytes": 8.0, "cpu_pct": cpu,
                     "disk_used_bytes": 9.0})
    return pd.DataFrame(rows)


STAGES = {"train": {"peaks": {"torch_max_allocated_bytes": 700, "torch_max_reserved_bytes": 1000}},
          "data": {"peaks": {"torch_max_allocated_bytes": 50, "bad": "x"}}, "params": {}}


def test_stage_order_puts_graph_stages_first():
    assert r.stage_order(["x", "train", "data", "x", "y"]) == ["data", "train", "x", "y"]


def test_manifest_peak():
    assert r.manifest_peak(STAGES, "torch_max_allocated_bytes") == 700.0
    assert r.manifest_peak(STAGES, "torch_max_allocated_bytes", "data") == 50.0
    assert math.isnan(r.manifest_peak(STAGES, "torch_max_allocated_bytes", "params"))
    assert math.isnan(r.manifest_peak(STAGES, "bad"))
    assert math.isnan(r.manifest_peak({"a": {"peaks": {"k": NAN}}}, "k"))
    assert r.manifest_peak({"a": {"peaks": {"k": 3}}, "b": {"peaks": {"k": 2.5}}}, "k") == 3.0


def test_per_stage_rows():
    ps = r.per_stage(_samples(), STAGES).set_index("stage")
    assert ps.index.tolist() == ["data", "train", "extra"]
    t = ps.loc["train"]
    assert (t["samples"], t["span_s"], t["peak_torch_allocated_bytes"], t["peak_gpu_util_pct"]) == (3, 3.0, 500, 60)
    assert t["mean_gpu_util_pct"] == 50.0 and t["gpu_util_samples"] == 2 and t["mean_cpu_pct"] == 60.0
    assert t["exact_max_allocated_bytes"] == 700.0 and ps.loc["data", "exact_max_allocated_bytes"] == 50.0
    assert math.isnan(ps.loc["extra", "peak_torch_allocated_bytes"]) and ps.loc["extra", "gpu_util_samples"] == 0
    assert math.isnan(ps.loc["extra", "mean_cpu_pct"])
    assert r.per_stage(None, STAGES).empty and r.per_stage(_samples().iloc[:0], STAGES).empty


def test_overall_takes_the_largest_of_sampled_and_exact_peaks():
    o = r.overall(_samples(), pd.DataFrame({"peak_allocated_bytes": [600, NAN]}), STAGES)
    assert o["peak_torch_allocated_bytes"] == 500 and o["peak_cpu_pct"] == 90.0
    assert o["mean_cpu_pct"] == pytest.approx((90 + 70 + 20 + 10) / 4)
    assert o["peak_allocated_bytes"] == 700.0 and o["peak_reserved_bytes"] == 1500.0
    o = r.overall(_samples(), pd.DataFrame({"peak_allocated_bytes": [900]}), {})
    assert o["peak_allocated_bytes"] == 900.0 and o["peak_reserved_bytes"] == 1500.0
    none = r.overall(None, None, {})
    assert all(math.isnan(v) for v in none.values())
    assert sorted(none) == sorted([f"peak_{c}" for c in r.PEAK_COLUMNS] +
                                  ["mean_cpu_pct", "peak_allocated_bytes", "peak_reserved_bytes"])
    assert r.overall(None, None, STAGES)["peak_allocated_bytes"] == 700.0
    assert r.overall(None, None, STAGES)["peak_reserved_bytes"] == 1000.0  # the manifest's exact peak alone
    assert r.overall(None, pd.DataFrame({"peak_allocated_bytes": []}), {})["peak_allocated_bytes"] != 0


def test_timeline_cuts_long_pauses():
    tl = r.timeline(_samples())
    assert tl.columns.tolist() == _samples().columns.tolist() + ["pause_s", "t"]
    assert tl["time"].tolist() == [0.0, 10.0, 11.0, 12.0, 200.0]
    assert tl["pause_s"].tolist() == [0.0, 0.0, 0.0, 0.0, 188.0]
    assert tl["t"].tolist() == [0.0, 10.0, 11.0, 12.0, 12.0 + r.PAUSE_SHOWN_S]
    edge = r.timeline(pd.DataFrame({"time": [0.0, r.PAUSE_S]}))
    assert edge["t"].tolist() == [0.0, r.PAUSE_S] and edge["pause_s"].tolist() == [0.0, 0.0]
    assert r.timeline(None).empty


def test_cap_check_boundaries():
    c = r.CapCheck(cap=100.0, allocated=80.0, reserved=100.0)
    assert c.applies and c.measured and c.within and c.worst == 100.0 and c.share == 1.0 and c.headroom == 0.0
    over = r.CapCheck(cap=100.0, allocated=101.0)
    assert over.worst == 101.0 and not over.within and over.headroom == -1.0
    assert r.CapCheck(cap=100.0, reserved=90.0).worst == 90.0
    unmeasured = r.CapCheck(cap=100.0)
    assert unmeasured.applies and not unmeasured.measured and not unmeasured.within
    no_cap = r.CapCheck(allocated=5.0)
    assert not no_cap.applies and not no_cap.measured and not no_cap.within


def test_train_utilisation():
    ps = r.per_stage(_samples(), STAGES)
    u = r.train_utilisation(ps, pd.DataFrame({"tokens_per_s": [300.0, NAN, 100.0]}))
    assert (u.mean_pct, u.samples, u.tokens_per_s_min, u.tokens_per_s_max, u.epochs) == (50.0, 2, 100.0, 300.0, 2)
    assert not u.low and u.threshold_pct == 50  # 50 % is not below 50 %
    assert not r.TrainUtilisation(mean_pct=50.0).low and r.TrainUtilisation(mean_pct=49.9).low
    assert not r.TrainUtilisation().low
    assert r.train_utilisation(ps, None) == r.TrainUtilisation()
    assert r.train_utilisation(ps[ps["stage"] != "train"], pd.DataFrame({"tokens_per_s": [1.0]})) == \
        r.TrainUtilisation()
    assert r.train_utilisation(ps, pd.DataFrame({"tokens_per_s": [NAN]})) == r.TrainUtilisation()
    no_util = ps.assign(mean_gpu_util_pct=NAN)
    assert r.train_utilisation(no_util, pd.DataFrame({"tokens_per_s": [1.0]})) == r.TrainUtilisation()
    assert r.train_utilisation(ps.iloc[:0], pd.DataFrame({"tokens_per_s": [1.0]})) == r.TrainUtilisation()
