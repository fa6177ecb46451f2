"""`pipeline verify`: a results folder passes only as the pipeline wrote it, from a committed config and a
commit of this repository; every way to fail is one line naming the file or field, and exit 2."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from records.config import PROJECT_ROOT
from records.store import RunStore
from records.verify import problems
from tests.conftest import cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"


def _head() -> str:
    r = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout: the code version cannot be checked here")
    return r.stdout.strip()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny run made as a lent machine makes it: the launcher names the commit (PIPELINE_GIT_COMMIT)."""
    root = tmp_path_factory.mktemp("verify")
    r = cli("run", CONFIG, *sets(tiny_overrides(root)), env={"PIPELINE_GIT_COMMIT": _head()})
    assert r.returncode == 0, r.stderr[-2000:]
    return root / "results" / "tiny-test"


@pytest.fixture
def run(made, tmp_path):
    copy = tmp_path / "tiny-test"
    shutil.copytree(made, copy)
    return copy


def test_a_run_as_written_passes(run):
    assert problems(run) == []
    r = cli("verify", run)
    assert r.returncode == 0 and "verified (" in r.stdout and "config configs/tiny-cpu.yaml + 3 overrides" in r.stdout


def test_an_edited_manifest_fails_on_its_seal(run):
    path = run / "manifest.json"
    d = json.loads(path.read_text())
    d["commands"].append("python -m pipeline run configs/tiny-cpu.yaml --stages data")  # a hand edit
    path.write_text(json.dumps(d, indent=2))
    [line] = problems(run)
    assert "changed after the results store wrote it" in line
    r = cli("verify", run)
    assert r.returncode == 2 and r.stderr.count("error:") == 1


def test_a_manifest_without_a_seal_fails(run):
    path = run / "manifest.json"
    d = json.loads(path.read_text())
    del d["seal"]
    path.write_text(json.dumps(d))
    assert "has no seal" in problems(run)[0]


def test_a_changed_table_fails_naming_it(run, made):
    """One value changed in a table of the right schema: it still parses, only its checksum can tell."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = run / "samples.parquet"
    table = pq.read_table(path)
    df = table.to_pandas()
    df.loc[0, "premise"] = "A hand-edited premise."
    pq.write_table(pa.Table.from_pandas(df, schema=table.schema, preserve_index=False), path, compression="zstd")
    assert pq.read_schema(path).equals(table.schema, check_metadata=False)
    found = [p for p in problems(run) if "samples.parquet" in p]
    assert len(found) == 1 and "samples.parquet is damaged: its checksum differs" in found[0], found


def test_a_planted_file_fails(run):
    (run / "notes.txt").write_text("hand-made")
    assert any("notes.txt: not a file the pipeline writes" in p for p in problems(run))


def test_a_config_that_no_longer_gives_the_run_fails(run, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text((PROJECT_ROOT / CONFIG).read_text().replace("learning_rate: 3.0e-3", "learning_rate: 1.0e-3"))
    assert "learning_rate: 1.0e-3" in config.read_text()
    store = RunStore(run)
    store.update_manifest(config_path=str(config))  # the store re-seals: only the config differs now
    [line] = problems(run)
    assert "train.learning_rate=0.001 (the run had 0.003)" in line


def test_code_that_is_not_a_commit_here_fails(run):
    store = RunStore(run)
    store.update_manifest(code_version={"git_commit": "0" * 40, "dirty": None})
    assert "is not a commit of this repository" in problems(run)[0]
    store.update_manifest(code_version={"git_commit": _head(), "dirty": True})
    assert "uncommitted changes" in problems(run)[0]


def test_an_unfinished_stage_fails(run):
    RunStore(run).update_stage("evaluate", status="failed", error="killed")
    assert any("stage evaluate is failed" in p for p in problems(run))


def test_verify_with_no_runs_is_one_line(tmp_path):
    r = cli("verify", "--results", tmp_path)
    assert r.returncode == 2 and "no run folders" in r.stderr


def test_a_run_older_than_a_field_added_at_its_old_behaviour_passes_until_the_config_sets_it(run, tmp_path):
    """A run made before train.attention existed (records.config.ADDED_AS_BEFORE) passes while its config leaves
    the field at the default that is what the run did, and fails once the config asks for something else."""
    from records.config import fingerprint
    store = RunStore(run)
    old = json.loads((run / "manifest.json").read_text())["config"]
    del old["train"]["attention"]
    store.update_manifest(config=old, config_fingerprint=fingerprint(old))
    assert problems(run) == []
    config = tmp_path / "tiny.yaml"
    config.write_text((PROJECT_ROOT / CONFIG).read_text().replace("  pad_to_multiple_of: 8",
                                                                   "  pad_to_multiple_of: 8\n  attention: flex"))
    store.update_manifest(config_path=str(config))
    [line] = problems(run)
    assert 'train.attention="flex" (the run had null)' in line


def test_a_config_rebuilt_today_compares_as_the_run_recorded_it():
    """verify and reproduce compare through records.verify.as_recorded: fields a run predates (the save cadence,
    and the levers added at the default that is what the run did) drop out; a lever set otherwise still differs."""
    from records.config_reading import load_config
    from records.verify import as_recorded
    today = load_config(PROJECT_ROOT / "configs/tiny-cpu.yaml").to_dict()
    recorded = {**today, "train": {k: v for k, v in today["train"].items() if k not in (
        "checkpoint_every_steps", "checkpoint_every_minutes", "attention", "length_buckets", "compile")}}
    assert as_recorded(load_config(PROJECT_ROOT / "configs/tiny-cpu.yaml").to_dict(), recorded) == recorded
    flex = load_config(PROJECT_ROOT / "configs/tiny-cpu.yaml", ["train.attention=flex"]).to_dict()
    assert as_recorded(flex, recorded)["train"]["attention"] == "flex"
    assert as_recorded(dict(today), today) == today  # a run that recorded them all keeps them all
