"""The report's reproductions (issue 24): each run's records from `pipeline reproduce`, listed with date, GPU, the
verdict per table and the time ratio; the verdict box's line on the latest; a run never reproduced says so; a
record that no longer fits its run (edited, or of an earlier version) is marked; record text is escaped."""
from __future__ import annotations

import json
import shutil

from analysis import reproductions
from analysis.sections import reproducibility
from records import reproduction as rp
from records.manifest import Manifest
from records.store import RunStore, atomic_write_json


def _record(folder, made: str, gpu: str = "1 x NVIDIA H200", ratio: float = 1.234) -> dict:
    """A record as `pipeline reproduce` writes it, its table entries compared by records/reproduction.py."""
    m = Manifest.read(folder / "manifest.json")
    store = RunStore(folder, writer=False)
    tables = {name: rp.compare_table(name, store.read(name), store.read(name))
              for name in ("samples", "predictions", "epochs", "params") if store.has(name)}
    return rp.sealed({
        "kind": rp.KIND, "version": rp.RECORD_VERSION, "run": folder.name, "made": made, "gpu": gpu,
        "device": "cuda", "code": {"changed": False, "allowed": False}, "tables": tables, "time_ratio": ratio,
        "committed": {"config_fingerprint": m.config_fingerprint,
                      "tables": {k: (v or {}).get("sha256") for k, v in (m.tables or {}).items()}},
        "verdict": rp.overall(tables), "exit_code": 0})


def _copy(results, tmp_path):
    return shutil.copytree(results, tmp_path / "results")


def test_each_runs_reproductions_are_listed_and_the_latest_leads(results, facts, tmp_path):
    res = _copy(results, tmp_path)
    gpu = res / "fixture-gpu"
    atomic_write_json(rp.folder_of(gpu) / "20261201T100000Z.json", _record(gpu, "2026-12-01T10:00:00+00:00"))
    atomic_write_json(rp.folder_of(gpu) / "20261203T100000Z.json",
                      _record(gpu, "2026-12-03T10:00:00+00:00", gpu="1 x <b>T4</b>", ratio=2.5))
    R = facts("fixture-gpu,fixture-shape", res)
    found = reproductions.of_folder(gpu, Manifest.read(gpu / "manifest.json"))
    assert [x.date for x in found] == ["2026-12-01", "2026-12-03"] and all(x.sound for x in found)
    assert found[0].tables == {"samples": "identical", "predictions": "identical", "epochs": "identical",
                               "params": "identical"}
    table = reproducibility.reproductions_table(R)
    assert "2026-12-01" in table and "x1.23" in table and "x2.50" in table
    assert "identical: samples, predictions, epochs, params" in table
    assert "| fixture-shape | never reproduced |" in table.replace("fixture\\-shape", "fixture-shape")
    assert "<b>" not in table and "\\<b\\>T4\\</b\\>" in table  # the record's text escaped
    line = reproducibility.latest_reproduction(R)
    assert "2026-12-03" in line and "x2.50" in line and "identical" in line and "<b>" not in line


def test_a_record_that_no_longer_fits_its_run_is_marked_not_sound(results, facts, tmp_path):
    res = _copy(results, tmp_path)
    gpu = res / "fixture-gpu"
    record = _record(gpu, "2026-12-02T10:00:00+00:00")
    record["committed"]["tables"] = {**record["committed"]["tables"], "samples": "0" * 64}  # an earlier version
    atomic_write_json(rp.folder_of(gpu) / "a.json", rp.sealed(record))
    edited = _record(gpu, "2026-12-04T10:00:00+00:00")
    (rp.folder_of(gpu) / "b.json").write_text(json.dumps({**edited, "verdict": "differs"}))
    R = facts("fixture-gpu", res)
    stale, changed = reproductions.of_folder(gpu, Manifest.read(gpu / "manifest.json"))
    assert not stale.sound and "reproduces an earlier version" in stale.problems[0]
    assert not changed.sound and "seal does not match" in changed.problems[0]
    assert "record not sound" in reproducibility.reproductions_table(R)
    assert "No run of this report has been reproduced yet" in reproducibility.latest_reproduction(R)


def test_no_reproduction_at_all_says_so(results, facts):
    R = facts("fixture-gpu,fixture-shape")
    assert "No run of this report has been reproduced yet" in reproducibility.latest_reproduction(R)
    assert reproducibility.reproductions_table(R).count("never reproduced") == 2
