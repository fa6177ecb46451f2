"""The manifest as one typed object: it round-trips every committed manifest, refuses a damaged one with one
line naming the file (exit 2 from `status` and `run`, nothing written), and documents itself."""
import json
import shutil

import pytest

from records.manifest import Manifest, ManifestError, StageRecord, documentation
from records.store import RunStore
from tests.conftest import ROOT, cli, sets, tiny_overrides

COMMITTED = sorted((ROOT / "results").glob("*/manifest.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_committed_manifests_round_trip_exactly(path, tmp_path):
    original = json.loads(path.read_text())
    assert Manifest.read(path).to_dict() == original
    # written back through the store (the only writer), the file holds the same data
    shutil.copy(path, tmp_path / "manifest.json")
    store = RunStore(tmp_path)
    store.write_manifest(store.manifest())
    assert json.loads((tmp_path / "manifest.json").read_text()) == original


def test_committed_manifests_read_as_typed_records():
    m = Manifest.read(ROOT / "results/smollm2-snli-offline/manifest.json")
    assert m.schema_version == 1 and m.weights == "pretrained" and m.run == "smollm2-snli-offline"
    train = m.stage("train")
    assert isinstance(train, StageRecord) and train.state() == "done"
    assert train.get("epochs_done") == train.get("epochs_total") == 5
    shape = Manifest.read(ROOT / "results/phi2-shape-h200/manifest.json")
    assert shape.stage_state("evaluate") == "not requested" and shape.stage_state("train") == "done"


def test_absent_manifest_is_empty():
    m = Manifest.read("/nonexistent/manifest.json")
    assert m.stages == {} and m.stage_state("data") == "not run"


DAMAGED = [
    ("truncated", lambda text: text[: len(text) // 2], "malformed manifest, not valid JSON (line"),
    ("empty file", lambda text: "", "malformed manifest, not valid JSON"),
    ("a list", lambda text: "[1, 2]", "malformed manifest, expected a JSON object"),
    ("newer version", lambda text: text.replace('"schema_version": 1', '"schema_version": 99'),
     "schema_version 99 is newer than this code understands (1)"),
    ("stages not a mapping", lambda text: json.dumps({**json.loads(text), "stages": ["data"]}),
     "malformed manifest, `stages` must be a mapping, got list"),
    ("a stage not a mapping", lambda text: json.dumps({**json.loads(text), "stages": {"data": "done"}}),
     "malformed manifest, stages.data must be a mapping"),
    ("seconds not a number", lambda text: text.replace('"seconds": ', '"seconds": "x", "_was": ', 1),
     "malformed manifest, `stages.data.seconds` must be a number, got str"),
    ("commands not a list", lambda text: json.dumps({**json.loads(text), "commands": "python -m pipeline"}),
     "malformed manifest, `commands` must be a list, got str"),
    ("not UTF-8", lambda text: "\udcff", "cannot be read"),
]


@pytest.mark.parametrize("damage,expected", [(d[1], d[2]) for d in DAMAGED], ids=[d[0] for d in DAMAGED])
def test_a_damaged_manifest_is_one_line_naming_the_file(tmp_path, damage, expected):
    path = tmp_path / "manifest.json"
    text = damage((ROOT / "results/smollm2-snli-offline/manifest.json").read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ManifestError) as e:
        Manifest.read(path)
    assert str(e.value).startswith(f"{path}: ") and expected in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


@pytest.fixture
def damaged_run(tmp_path):
    """A tiny run's folder whose manifest.json was cut off mid-write (as by a full disk)."""
    ov = tiny_overrides(tmp_path)
    folder = tmp_path / "results" / "tiny-test"
    folder.mkdir(parents=True)
    text = (ROOT / "results/smollm2-snli-offline/manifest.json").read_text()
    (folder / "manifest.json").write_text(text[:500])
    return ov, folder


@pytest.mark.parametrize("command", ["status", "run"])
def test_cli_on_a_damaged_manifest_exit_2_one_line_nothing_written(damaged_run, command):
    ov, folder = damaged_run
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = cli(command, "configs/tiny-cpu.yaml", *sets(ov))
    assert r.returncode == 2, r.stderr[-2000:]
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"error: {folder / 'manifest.json'}: malformed manifest, not valid JSON (line ")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (folder.parent.parent / "checkpoints").exists()


def test_committed_doc_is_generated_from_the_object():
    """records/MANIFEST.md is `python -m pipeline manifest-doc`'s output: the fields' help is its one source."""
    assert (ROOT / "records/MANIFEST.md").read_text() == documentation()
    r = cli("manifest-doc")
    assert r.returncode == 0 and r.stdout == documentation()
    for name in ("schema_version", "stages_requested", "tuning", "fingerprint", "info"):
        assert f"| `{name}` |" in documentation()
