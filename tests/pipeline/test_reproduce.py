"""`pipeline reproduce RUN` (issue 24): the small tiny-config run reproduced identically with a sealed record that
`verify` checks; one committed prediction changed (re-recorded through the store, as a tool would) is found, named
and exits 4; a code-version mismatch is refused, then allowed and said; a tune's choice is reproduced as chosen;
the committed folder is never written."""
from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest

from pipeline.cli import main
from records import reproduction as rp
from records.config import PROJECT_ROOT
from records.schema import DOCS
from records.store import RunStore
from records.verify import problems
from tests.pipeline.reliability import RUN, copy_run, folder, tree_state

HEAD = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True,
                      text=True).stdout.strip()
pytestmark = pytest.mark.skipif(not HEAD, reason="not a git checkout: code versions cannot be named")
CHOSEN = ["train.learning_rate=0.003", "lora.r=4"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The small run, made by the Runner with its code version named as HEAD (as a launcher names it), and the
    same run with a tune's choice applied (the manifest's `tuned` block, as `run --tuned-from` writes it)."""
    from tests.pipeline import reliability
    root = tmp_path_factory.mktemp("made")
    tuned_root = tmp_path_factory.mktemp("made-tuned")
    old = os.environ.get("PIPELINE_GIT_COMMIT")
    os.environ["PIPELINE_GIT_COMMIT"] = HEAD
    try:
        reliability.run(root)
        from pipeline.run import Runner
        tuned = {"from_run": "elsewhere", "grid": "grid.yaml", "chosen_trial": 2, "trials": 2, "rule": "best",
                 "overrides": CHOSEN}
        given = reliability.overrides(tuned_root)
        Runner(reliability.config(tuned_root, *CHOSEN), reliability.CONFIG, tuple(given), tuned=tuned).run()
    finally:
        os.environ.pop("PIPELINE_GIT_COMMIT") if old is None else os.environ.update(PIPELINE_GIT_COMMIT=old)
    return root, tuned_root


@pytest.fixture
def head(monkeypatch):
    monkeypatch.setenv("PIPELINE_GIT_COMMIT", HEAD)


def _reproduce(work, *args) -> int:
    return main(["reproduce", RUN, "--results", str(work / "results"), *args])


def _records(work) -> list[dict]:
    return [rp.read(p) for p in rp.records_of(folder(work))]


def test_the_small_run_reproduces_identically_with_a_verified_record(made, tmp_path, head, capsys):
    work = copy_run(made[0], tmp_path / "work")
    before = tree_state(folder(work))
    assert _reproduce(work) == 0
    out = capsys.readouterr().out
    assert f"{RUN}: reproduced: identical" in out and "code: the same commit" in out
    assert tree_state(folder(work)) == before  # the committed run: not one byte, file or folder more
    [record] = _records(work)
    assert record["verdict"] == "identical" and record["exit_code"] == 0 and record["run"] == RUN
    compared = {k: v["verdict"] for k, v in record["tables"].items()}
    assert compared == {"samples": "identical", "predictions": "identical", "epochs": "identical",
                        "steps": "identical", "params": "identical", "manifest": "identical",
                        "resources": "measured"}
    assert record["time_ratio"] > 0 and record["measurements"]["fine-tuning seconds"]["committed"] > 0
    assert record["code"] == {"run": HEAD, "here": HEAD, "changed": False, "why": None, "allowed": False}
    assert record["device"] == "cpu" and record["libraries"]["torch"]
    assert problems(folder(work)) == []  # verify accepts the run with its record, and checks the record

    [path] = rp.records_of(folder(work))
    edited = {**record, "verdict": "differs", "exit_code": rp.EXIT_DIFFERS}
    path.write_text(json.dumps(edited))  # a hand edit: the seal no longer matches
    assert any("its seal does not match" in line for line in problems(folder(work)))
    resealed = rp.sealed({**record, "tables": {**record["tables"], "epochs": {**record["tables"]["epochs"],
                                                                               "verdict": "differs"}}})
    path.write_text(json.dumps(resealed))  # re-sealed, but its verdicts no longer follow from its entries
    found = problems(folder(work))
    assert any("table epochs: its verdict 'differs' does not follow" in line for line in found), found
    assert any("is not the worst of its tables'" in line for line in found), found
    (path.parent / "notes.txt").write_text("x")
    assert any("notes.txt: not a reproduction record" in line for line in problems(folder(work)))


def test_one_changed_prediction_differs_names_the_row_and_exits_4(made, tmp_path, head, capsys):
    work = copy_run(made[0], tmp_path / "work")
    store = RunStore(folder(work))
    preds = store.read("predictions")
    mine = preds[preds["model"].str.startswith("epoch_") | (preds["model"] == "finetuned")].copy()  # evaluate's
    row = mine.index[(mine["model"] == "epoch_1") & (mine["split"] == "validation")][1]
    mine.loc[row, "pred"] = (mine.loc[row, "pred"] + 1) % 3
    store.replace_rows("predictions", mine, sorted(set(mine["model"])))  # re-recorded: the run still verifies
    assert problems(folder(work)) == []
    idx = int(mine.loc[row, "idx"])
    assert _reproduce(work) == rp.EXIT_DIFFERS == 4
    out = capsys.readouterr().out
    assert f"{RUN}: reproduced with differences" in out
    assert f"first differing: split=validation idx={idx} model=epoch_1: pred" in out, out
    [record] = _records(work)
    entry = record["tables"]["predictions"]
    assert record["verdict"] == entry["verdict"] == "differs" and record["exit_code"] == 4
    assert entry["columns"]["pred"]["rows_differing"] == 1
    assert entry["differences"][0]["row"] == {"split": "validation", "idx": idx, "model": "epoch_1"}
    assert {k: v["verdict"] for k, v in record["tables"].items() if k != "predictions"}.items() >= {
        "samples": "identical", "epochs": "identical", "params": "identical"}.items()
    assert problems(folder(work)) == []  # a record that says "differs", consistently, is a sound record


def test_another_commit_is_refused_then_allowed_and_said(made, tmp_path, monkeypatch, capsys):
    work = copy_run(made[0], tmp_path / "work")
    monkeypatch.setenv("PIPELINE_GIT_COMMIT", "f" * 40)  # this checkout as another commit
    assert _reproduce(work) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"the run was made by commit {HEAD[:12]}, this checkout is ffffffffffff" in err[0]
    assert "--allow-code-change" in err[0] and not rp.folder_of(folder(work)).exists()
    assert _reproduce(work, "--allow-code-change") == 0
    out = capsys.readouterr().out
    assert "this checkout is ffffffffffff (allowed by --allow-code-change)" in out
    [record] = _records(work)
    assert record["code"]["changed"] and record["code"]["allowed"] and record["code"]["here"] == "f" * 40
    monkeypatch.setenv("PIPELINE_GIT_COMMIT", HEAD)
    assert problems(folder(work)) == []


def test_a_tunes_choice_is_reproduced_with_that_choice(made, tmp_path, head, capsys):
    work = copy_run(made[1], tmp_path / "work")
    committed = RunStore(folder(work)).manifest()
    assert committed.config["train"]["learning_rate"] == 0.003 and committed.tuned["overrides"] == CHOSEN
    assert _reproduce(work, "--out", str(tmp_path / "scratch")) == 0
    again = RunStore(tmp_path / "scratch" / "results" / RUN).manifest()
    assert again.tuned == committed.tuned and again.config["lora"]["r"] == 4
    assert again.config["train"]["learning_rate"] == 0.003
    assert {**again.config, "output": None} == {**committed.config, "output": None}
    assert again.commands == ["python -m pipeline reproduce small"]
    assert _records(work)[0]["verdict"] == "identical"
    assert problems(tmp_path / "scratch" / "results" / RUN) == []  # the re-run is a run verify accepts


def test_what_cannot_be_reproduced_is_one_line(made, tmp_path, head, capsys):
    work = copy_run(made[0], tmp_path / "work")
    assert main(["reproduce", "no-such-run", "--results", str(work / "results")]) == 2
    assert "holds no manifest.json" in capsys.readouterr().err
    store = RunStore(folder(work))
    m = store.manifest()
    m.config_path = "configs/gone.yaml"
    store.write_manifest(m)  # re-sealed, as a tool would
    before = tree_state(work)
    assert _reproduce(work) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "configs/gone.yaml" in err[0] and "must pass `pipeline verify`" in err[0]
    assert tree_state(work) == before


# ------------------------------------------------------------------------------------ the comparison itself
def test_every_table_has_rules_and_every_rule_a_column():
    assert set(rp.RULES) | set(rp.NOT_COMPARED) == set(DOCS)
    for table, rules in rp.RULES.items():
        assert set(rules) <= {c.name for c in DOCS[table].columns}, table


def _preds(p: float) -> pd.DataFrame:
    return pd.DataFrame({"split": ["test", "test"], "idx": [1, 2], "model": ["finetuned"] * 2, "pred": [0, 1],
                         "p_entailment": [0.5, p], "p_neutral": [0.3, 0.6], "p_contradiction": [0.2, 0.4 - p]})


def test_probabilities_within_the_tolerance_are_named_beyond_it_differ():
    same = rp.compare_table("predictions", _preds(0.1), _preds(0.1))
    assert same["verdict"] == "identical" and "tolerance" not in same
    near = rp.compare_table("predictions", _preds(0.1), _preds(0.1 + 3e-7))
    assert near["verdict"] == "within tolerance" and near["differences"] == []
    assert near["tolerance"].startswith("p_entailment within 1e-06 absolute")
    far = rp.compare_table("predictions", _preds(0.1), _preds(0.1 + 1e-3))
    assert far["verdict"] == "differs" and far["differences"][0]["row"] == {"split": "test", "idx": 2,
                                                                            "model": "finetuned"}
    gone = rp.compare_table("predictions", _preds(0.1), _preds(0.1).iloc[:1])
    assert gone["verdict"] == "differs" and gone["missing_rows"] == 1
    assert gone["differences"] == [{"row": {"split": "test", "idx": 2, "model": "finetuned"}, "column": None,
                                    "what": "missing from the reproduction"}]
    assert rp.overall({"a": same, "b": near}) == "within tolerance" and rp.overall({"a": near, "b": far}) == "differs"
