"""Seed studies (`pipeline run CONFIG --seeds ...`, pipeline/study.py, records/study.py): one full run per seed in a
folder of its own, tied by a sealed study record; a kill loses at most the seed in progress; `verify` and `status`
understand a study; bad --seeds input is one line and exit 2."""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess

import pandas as pd
import pytest

from pipeline.study import Study, parse_seeds, run_study, study_status
from records import faults
from records import study as records_study
from records.config import ConfigError
from records.graph import NAMES
from records.manifest import Manifest
from records.store import RunStore
from tests.conftest import ROOT, cli, sets
from tests.pipeline.reliability import CONFIG, RUN, SimulatedKill, overrides, this_process_gone, tree_state


def _head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def _plan(root, seeds="0-2", *extra, **kw) -> Study:
    return Study(CONFIG, overrides(root, *extra), parse_seeds(seeds), **kw)


def _kill_in(m: pytest.MonkeyPatch, run: str, point: str) -> None:
    """SIGKILL as records/faults.py simulates it (tests/pipeline/reliability.py), but at the write named `point` of
    the run whose paths contain `run` only: every seed's writes have the same names."""
    real = faults.point

    def die():
        faults._dead = True  # every later write dies too
        raise SimulatedKill(point)

    def point_here(path):
        if faults._dead:
            die()
        real(path)  # names and counts it
        if run in str(path) and faults.history[-1] == point:
            die()
    m.setattr(faults, "point", point_here)
    m.setattr(faults, "die", die)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 3-seed study of the small tiny config, killed in the second seed's training (at its epoch-2 checkpoint),
    then run again: (root, the first seed's files just after the kill, the second run's output)."""
    root = tmp_path_factory.mktemp("seed-study")
    mp = pytest.MonkeyPatch()
    mp.setenv("PIPELINE_GIT_COMMIT", _head())  # as a lent machine names it: verify checks the commit
    try:
        faults.reset()
        with mp.context() as m:
            _kill_in(m, f"{RUN}-seed1", "train:epoch_2:1")
            with pytest.raises(SimulatedKill):
                run_study(_plan(root), jobs=1)
        faults.reset()
        first = {p: tree_state(root / p / f"{RUN}-seed0") for p in ("results", "checkpoints")}
        assert not (root / "results" / f"{RUN}-seed2").exists()  # the third seed never started
        out = io.StringIO()
        with this_process_gone(mp), contextlib.redirect_stdout(out):
            run_study(_plan(root), jobs=1)
        yield root, first, out.getvalue()
    finally:
        faults.reset()
        mp.undo()


def test_each_seed_is_a_full_run_of_its_own_folder(study):
    root, _, out = study
    seeds = {}
    for k in range(3):
        m = Manifest.read(root / "results" / f"{RUN}-seed{k}" / "manifest.json")
        assert all(m.stage(s).status == "done" for s in NAMES), (k, m.stages)
        assert m.config["seed"] == k and m.run == f"{RUN}-seed{k}"
        assert m.overrides == [*overrides(root), f"seed={k}", f"run={RUN}-seed{k}"]
        seeds[k] = m
    # the same settings but the seed: the same resolved config without seed and run, the same data sample
    assert len({records_study.shared_fingerprint(m.config) for m in seeds.values()}) == 1
    samples = [RunStore(root / "results" / f"{RUN}-seed{k}").read("samples") for k in range(3)]
    for s in samples[1:]:
        pd.testing.assert_frame_equal(samples[0], s)
    # the seed governs the head's initialisation, so the untrained head's test predictions differ between seeds
    heads = [RunStore(root / "results" / f"{RUN}-seed{k}").read("predictions") for k in range(3)]
    probs = [h[h["model"] == "baseline_head"].sort_values(["split", "idx"])["p_entailment"].tolist() for h in heads]
    assert probs[0] != probs[1] != probs[2]
    for k in range(3):
        assert f"seed {k}" in out and f"{RUN}-seed{k}" in out  # the closing summary names every seed


def test_the_study_record_names_the_shared_settings_and_the_seeds(study):
    root, _, _ = study
    path = root / "results" / f"{RUN}.study.json"
    record = records_study.read(path)
    assert record["study"] == RUN and record["config_path"] == "configs/tiny-cpu.yaml"
    assert record["overrides"] == overrides(root) and record["tuned"] is None
    assert [s["seed"] for s in record["seeds"]] == [0, 1, 2]
    assert [s["run"] for s in record["seeds"]] == [f"{RUN}-seed{k}" for k in range(3)]
    assert "the LoRA adapters' initialisation" in record["seed_governs"]
    assert any("random weights" in g for g in record["seed_governs"])  # the tiny model's weights are random
    assert "data sample" in record["same_for_every_seed"]
    assert record["command"].endswith("--seeds 0,1,2")
    assert records_study.seed_folders(path, record) == {k: root / "results" / f"{RUN}-seed{k}" for k in range(3)}


def test_a_kill_in_the_second_seed_loses_only_that_seed_in_progress(study):
    root, first, out = study
    assert f"{RUN}-seed0: all 5 stages up to date" in out  # the first seed was not run again
    assert {p: tree_state(root / p / f"{RUN}-seed0") for p in ("results", "checkpoints")} == first
    assert "Resuming from the checkpoint of epoch 1/2" in out  # the second resumed from its last complete epoch
    assert out.count("Resuming from the checkpoint") == 1
    assert f"=== seed 2 (3/3): run {RUN}-seed2" in out


def test_verify_accepts_the_study_and_every_seed(study):
    root, _, _ = study
    path = root / "results" / f"{RUN}.study.json"
    assert records_study.problems(path) == []
    r = cli("verify", path)
    assert r.returncode == 0, r.stderr
    assert "verified seed study (3 seeds: 0, 1, 2" in r.stdout


def test_verify_refuses_a_tampered_study_record(study, tmp_path):
    root, _, _ = study
    path = root / "results" / f"{RUN}.study.json"
    record = json.loads(path.read_text())
    record["seeds"] = record["seeds"][:2]  # a seed dropped by hand, e.g. an unlucky one
    tampered = tmp_path / path.name
    tampered.write_text(json.dumps(record))
    for k in range(3):  # beside the same seed folders
        shutil.copytree(root / "results" / f"{RUN}-seed{k}", tmp_path / f"{RUN}-seed{k}")
    found = records_study.problems(tampered)
    assert len(found) == 1 and "its seal does not match" in found[0] and "fix: run the study again" in found[0]
    r = cli("verify", tampered)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "its seal does not match" in r.stderr


def test_verify_refuses_a_study_whose_seeds_were_made_with_other_settings(study, tmp_path):
    root, _, _ = study
    path = root / "results" / f"{RUN}.study.json"
    record = {k: v for k, v in records_study.read(path).items() if k != "seal"}
    other = tmp_path / path.name
    records_study.write(other, {**record, "overrides": [*record["overrides"], "train.learning_rate=0.1"]})
    for k in range(3):
        shutil.copytree(root / "results" / f"{RUN}-seed{k}", tmp_path / f"{RUN}-seed{k}")
    found = records_study.problems(other)
    assert len(found) == 3 and all("manifest has overrides" in line for line in found), found
    gone = tmp_path / "gone" / path.name
    gone.parent.mkdir()
    records_study.write(gone, record)
    assert [line for line in records_study.problems(gone) if "is missing" in line] and \
        len(records_study.problems(gone)) == 3


def test_status_lists_each_seed(study):
    root, _, _ = study
    text = study_status(_plan(root, "0-3"))
    assert text.splitlines()[0].startswith(f"seed study {RUN}: 3 of 4 seeds complete (seeds 0,1,2,3)")
    for k in range(3):
        assert f"{RUN}-seed{k}: " in text
    assert text.split(f"{RUN}-seed3: ")[1].count("not run") == len(NAMES)


def test_a_tuned_study_applies_the_one_tune_to_every_seed(tmp_path):
    chosen = ["train.learning_rate=0.003", "lora.r=4"]
    RunStore(tmp_path / "results" / RUN).update_manifest(tuning={
        "grid": "grid.yaml", "trials": 2, "chosen_trial": 2, "rule": "best", "chosen_overrides": chosen})
    with pytest.raises(ConfigError, match="add --tuned"):  # a tuned run's study without its choice: refused
        _plan(tmp_path)
    plan = _plan(tmp_path, "3,5", tuned=True)
    assert plan.tuned["overrides"] == chosen and plan.record()["tuned"]["chosen_trial"] == 2
    for seed, _, cfg, tuned in plan.plans:
        assert (cfg.seed, cfg.train.learning_rate, cfg.lora.r) == (seed, 0.003, 4)
        assert tuned["from_run"] == RUN  # every seed reads the study's own run's tune: it is never run again
    assert plan.command().endswith("--seeds 3,5 --tuned")
    assert plan.seed_args(plan.plans[0][1], False, False)[-2:] == ["--tuned-from", RUN]


@pytest.mark.parametrize("text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,3,7", [0, 3, 7]), ("2-3, 9", [2, 3, 9]),
                                         ("5", [5])])
def test_seed_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, why", [("", "an empty entry"), ("0-", "'0-'"), ("a", "'a'"), ("-1", "'-1'"),
                                       ("4-1", "runs backwards"), ("1,1", "seed 1 is given twice"),
                                       ("0-5000", "more than 1000 seeds")])
def test_malformed_seeds_name_the_flag_and_the_fix(text, why):
    with pytest.raises(ConfigError) as e:
        parse_seeds(text)
    assert str(e.value).startswith("--seeds: ") and why in str(e.value)
    assert str(e.value).endswith("(fix: e.g. --seeds 0-4 or --seeds 0,3,7)")


def test_bad_seeds_on_the_command_line_is_one_line_exit_2_nothing_written(tmp_path):
    r = cli("run", CONFIG, *sets(overrides(tmp_path)), "--seeds", "0..4")
    assert r.returncode == 2 and r.stderr == "error: --seeds: '0..4' is not a seed or a range of seeds (fix: e.g. " \
                                             "--seeds 0-4 or --seeds 0,3,7)\n"
    r = cli("run", CONFIG, *sets(overrides(tmp_path, "seed=3")), "--seeds", "0-2")
    assert r.returncode == 2 and r.stderr.startswith("error: --set seed: --seeds sets each seed's `seed`")
    r = cli("run", CONFIG, *sets(overrides(tmp_path)), "--jobs", "2")
    assert r.returncode == 2 and "--jobs: only with --seeds" in r.stderr
    assert list(tmp_path.iterdir()) == []
