"""How the settings were chosen, how often the test rows were scored and whether `pipeline verify` accepts a run:
the facts (analysis/tuning.py, history.py, verification.py) and their cells, from manifests built here with and
without the new fields."""
import subprocess

import pytest

from analysis import fmt, sections
from analysis.markdown import code
from records.config import PROJECT_ROOT, fingerprint
from records.config_reading import load_config
from records.manifest import Manifest
from tests.report_fixture import edit_manifest, record_evaluations, record_tuned, save_manifest, write_run


def test_an_older_manifest_has_no_history_and_says_so(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    H = facts("r", tmp_path).headline
    assert not H.test_history.recorded and H.test_history.count == 0 and not H.test_history.superseded
    assert sections.evaluations.history_cell(H) == "not recorded (an older manifest)"
    assert not H.tuning.applied.present and H.tuning.present and H.tuning.recorded


def test_scored_once_for_the_configuration_reported(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    m = record_evaluations(tmp_path / "r")
    E = facts("r", tmp_path).headline.test_history
    assert E.recorded and E.once_current and not E.superseded and not E.recovered
    [e] = E.entries
    assert e.accuracy == m.test_evaluations[0]["test_accuracy"] and e.rows == m.test_evaluations[0]["test_rows"]
    assert sections.evaluations.history_cell(facts("r", tmp_path).headline) == "once, for this configuration"


def test_superseded_entries_name_the_settings_that_changed(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    m = record_evaluations(tmp_path / "r", {"train.learning_rate": 1e-3}, {"lora.r": 4, "lora.alpha": 8})
    H = facts("r", tmp_path).headline
    E = H.test_history
    assert E.count == 3 and [e.current for e in E.entries] == [False, False, True]
    now = m.config
    assert E.entries[0].changed == (("train.learning_rate", 1e-3, now["train"]["learning_rate"]),)
    assert E.entries[1].changed == (("lora.r", 4, now["lora"]["r"]), ("lora.alpha", 8, now["lora"]["alpha"]))
    md = sections.evaluations.history_table(H)
    first = next(ln for ln in md.splitlines() if ln.startswith("| 1 |"))
    then = m.test_evaluations[0]
    assert f"{code('train.learning_rate')} 0.001 (now {now['train']['learning_rate']:g})" in first
    assert fmt.pct(then["test_accuracy"]) in first and "| superseded |" in first and "| as it ran |" in first
    assert code(then["git_commit"][:12]) in first and "2025-11-20 09:00 UTC" in first
    assert "| reported here |" in next(ln for ln in md.splitlines() if ln.startswith("| 3 |"))
    assert sections.evaluations.history_cell(H) == "3 times: 2 under superseded settings"


def test_a_recovered_entry_is_marked_with_its_source(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    m = record_evaluations(tmp_path / "r", {"lora.r": 8}, recovered=True)
    H = facts("r", tmp_path).headline
    assert [e.recovered for e in H.test_history.entries] == [True, False]
    assert H.test_history.sources() == [m.test_evaluations[0]["source"]]
    assert "| recovered from an older manifest |" in sections.evaluations.history_table(H)


def test_superseded_by_a_field_outside_the_tunable_ones(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    record_evaluations(tmp_path / "r", {})  # the same tunable settings, another evaluate fingerprint
    H = facts("r", tmp_path).headline
    [old] = H.test_history.superseded
    assert old.changed == ()
    assert f"none of the tunable ones (config fingerprint then {code(old.config_fingerprint)})" in \
        sections.evaluations.history_table(H)


def test_evaluated_again_under_the_same_settings_is_not_superseded(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    m = record_evaluations(tmp_path / "r")
    m.test_evaluations = m.test_evaluations * 2
    save_manifest(tmp_path / "r", m)
    H = facts("r", tmp_path).headline
    assert H.test_history.repeated_current and not H.test_history.superseded
    assert sections.evaluations.history_cell(H) == "2 times, all for this configuration"


def test_the_other_runs_with_superseded_scorings_are_listed(tmp_path, facts):
    for name in ("a", "b", "c"):
        write_run(tmp_path, name, kind="gpu", seed=1)
    record_evaluations(tmp_path / "b", {"lora.r": 8})
    record_evaluations(tmp_path / "c")
    R = facts("a,b,c", tmp_path)
    assert [f.name for f in R.others_rescored] == ["b"]
    md = sections.evaluations.runs_history_table(R.others_rescored)
    assert md.count("| b |") == 2 and "| c |" not in md


def test_the_tunes_choice_applied_by_the_pipeline(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    m = record_tuned(tmp_path / "r")
    A = facts("r", tmp_path).headline.tuning.applied
    assert A.present and not A.other_run and A.from_run == "r"
    assert (A.trial, A.trials, A.overrides) == (m.tuned["chosen_trial"], m.tuned["trials"], tuple(m.tuned["overrides"]))
    record_tuned(tmp_path / "r", from_run="other-run")
    assert facts("r", tmp_path).headline.tuning.applied.other_run


def test_a_run_tuned_from_another_runs_table_has_a_choice_on_record_without_a_table(tmp_path, facts):
    write_run(tmp_path, "r", kind="cpu", seed=1)  # no tuning table of its own
    edit_manifest(tmp_path / "r", lambda m: setattr(m, "tuned", {"from_run": "t", "chosen_trial": 3, "trials": 4,
                                                                  "rule": "best", "overrides": ["lora.r=4"]}))
    T = facts("r", tmp_path).headline.tuning
    assert not T.present and T.recorded and T.applied.other_run and T.applied.trial == 3


def test_a_malformed_history_is_refused_naming_the_field(tmp_path, refused):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    record_evaluations(tmp_path / "r")
    edit_manifest(tmp_path / "r", lambda m: m.test_evaluations[0].update(test_rows="100"))
    refused(tmp_path / "r", "`test_evaluations.0.test_rows` must be an integer")


# ------------------------------------------------------------------------------------------------ verification

def test_verify_problems_are_listed_one_per_line_with_the_folder_shortened(tmp_path, facts):
    write_run(tmp_path / "results", "r", kind="gpu", seed=1)
    R = facts("r", tmp_path / "results")
    v = R.headline.verification
    assert v.checked and not v.passed and v.sealed and v.problems
    assert all(str(tmp_path) not in p for p in v.problems) and "results/r/manifest.json" in v.problems[0]
    md = sections.reproducibility.verification_list(R)
    assert md.startswith("- **r**: not verified:\n") and md.count("\n    - ") == len(v.problems)
    assert sections.reproducibility.verification_cell(R.headline) == f"not verified ({len(v.problems)} problems)"


def test_an_unsealed_manifest_is_named(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    edit_manifest(tmp_path / "r", lambda m: setattr(m, "seal", None))  # as a manifest older than the seal
    R = facts("r", tmp_path)
    assert R.unsealed_runs == ["r"] and "has no seal" in R.headline.verification.problems[0]


def _head() -> str:
    r = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout: the code version cannot be checked here")
    return r.stdout.strip()


def passing_run(root, name="r"):
    """A fixture run whose manifest `pipeline verify` accepts: a config file that rebuilds its config, the
    stages it asked for, a commit of this repository."""
    folder = write_run(root, name, kind="gpu", seed=1)
    config = root / f"{name}.yaml"
    config.write_text((PROJECT_ROOT / "configs" / "tiny-cpu.yaml").read_text())
    m = Manifest.read(folder / "manifest.json")
    m.config_path, m.overrides, m.stages_requested = str(config), [], list(m.stages)
    m.config = load_config(config, [], check_files=False).to_dict()
    m.config_fingerprint = fingerprint(m.config)
    m.code_version = {"git_commit": _head(), "dirty": False}
    save_manifest(folder, m)
    return folder


def test_a_run_that_passes_reads_verified_with_its_commit_and_config(tmp_path, facts):
    passing_run(tmp_path)
    R = facts("r", tmp_path)
    v = R.headline.verification
    assert v.passed, v.problems
    md = sections.reproducibility.verification_list(R)
    assert md == f"- **r**: verified: code {code(_head()[:12])}, config {code(str(tmp_path / 'r.yaml'))}"
    assert R.verified_runs == ["r"] and sections.reproducibility.verification_cell(R.headline) == "verified"


def test_without_git_verify_says_so_and_the_report_goes_on(tmp_path, facts, monkeypatch):
    passing_run(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git on PATH
    v = facts("r", tmp_path).headline.verification
    assert v.checked and not v.passed and any("git is not available here" in p for p in v.problems)


def test_when_pipeline_verify_cannot_be_imported_the_run_is_not_checked(tmp_path, facts, monkeypatch):
    import analysis.verification
    write_run(tmp_path, "r", kind="gpu", seed=1)

    def missing(folder):
        raise ImportError("No module named 'records.verify'")
    monkeypatch.setattr(analysis.verification, "_problems", missing)
    R = facts("r", tmp_path)
    v = R.headline.verification
    assert not v.checked and not v.passed and "not available here" in v.why_not_checked
    assert sections.reproducibility.verification_cell(R.headline) == "not checked"
    assert sections.reproducibility.verification_list(R).startswith("- **r**: not checked (pipeline verify is not")
