"""records.graph, records.hashing and records.fingerprints against expectations written out by hand (not
derived from the graph itself), so a wrong edge, a wrong owner or a changed hash form shows."""
import hashlib
import json

import pytest

from records import graph, hashing
from records.config_reading import load_config
from records.fingerprints import source_files, source_identity, stage_fingerprints, stage_inputs
from tests.conftest import ROOT

CONFIG = ROOT / "configs/tiny-cpu.yaml"


def test_downstream_by_hand():
    assert graph.downstream("data") == ("baseline", "train", "evaluate")
    assert graph.downstream("train") == ("evaluate",)
    assert graph.downstream("params") == ()
    assert graph.downstream("baseline") == ()
    assert graph.downstream("evaluate") == ()


def test_writers_owners_and_order_by_hand():
    assert graph.NAMES == ("data", "params", "baseline", "train", "evaluate")
    assert graph.writers("resources") == graph.NAMES
    assert graph.writers("predictions") == ("baseline", "evaluate")
    assert graph.writers("samples") == ("data",)
    assert graph.writers("epochs") == ("train",) and graph.writers("steps") == ("train",)
    assert graph.writers("nothing") == ()
    assert graph.owner_of("predictions", "finetuned") == "evaluate"
    assert graph.owner_of("predictions", "epoch_") == "evaluate"
    assert graph.owner_of("predictions", "baseline_head") == "baseline"
    assert graph.owner_of("predictions", "xepoch_1") is None
    assert graph.owner_of("predictions", "epoch") is None and graph.owner_of("predictions", "epochal") is None
    assert graph.owner_of("samples", "finetuned") is None
    assert graph.owner_of("resources", "evaluate") == "evaluate"
    assert graph.owner_of("resources", "finetuned") is None
    assert graph.owned_rows("evaluate", "predictions") == ["finetuned", "epoch_*"]
    assert graph.owned_rows("evaluate", "resources") == []
    assert graph.order(["evaluate", "nope", "data", "train"]) == ["data", "train", "evaluate"]
    assert graph.stage("train").upstream == ("data",)
    assert graph.OWNER_KEY == {"predictions": "model", "resources": "stage"}


def test_hashing_forms():
    assert hashing.bytes_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hashing.canonical_json({"b": 1, "a": [1, "x"]}) == b'{"a":[1,"x"],"b":1}'
    assert hashing.canonical_json({"p": ROOT.parent / "x"}) == json.dumps({"p": str(ROOT.parent / "x")},
                                                                         separators=(",", ":")).encode()
    assert hashing.fingerprint({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()[:16]
    assert len(hashing.fingerprint([])) == 16


def test_file_sha256_reads_the_whole_file(tmp_path):
    data = bytes(range(256)) * 8193  # a little over 2 MiB: more than one block
    p = tmp_path / "f"
    p.write_bytes(data)
    assert hashing.file_sha256(p) == hashlib.sha256(data).hexdigest()
    (tmp_path / "e").write_bytes(b"")
    assert hashing.file_sha256(tmp_path / "e") == hashlib.sha256(b"").hexdigest()


@pytest.fixture(scope="module")
def tiny():
    return load_config(CONFIG, check_files=False)


def test_stage_inputs_pick_the_declared_fields(tiny):
    d = tiny.to_dict()
    assert stage_inputs(tiny, "evaluate") == {"eval": d["eval"]}
    assert stage_inputs(tiny, "params")["train.prepare_kbit"] == d["train"]["prepare_kbit"]
    assert set(stage_inputs(tiny, "params")) == {"model", "quantization", "lora", "train.prepare_kbit"}


def test_source_files_and_identity(tiny):
    files = source_files(tiny)
    folder = tiny.path(tiny.data.path)
    assert files == {s: folder / tiny.data.file_pattern.format(split=s)
                     for s in sorted({getattr(tiny.data, r).source_split for r in ("train", "validation", "test")})}
    assert source_identity(tiny) == {s: hashing.file_sha256(p) for s, p in files.items()}


def test_stage_fingerprints_by_their_definition(tiny):
    fps = stage_fingerprints(tiny)
    assert list(fps) == list(graph.NAMES)
    data = hashing.fingerprint({"config": stage_inputs(tiny, "data"), "upstream": {},
                                "source": source_identity(tiny)})
    assert fps["data"] == data
    assert fps["params"] == hashing.fingerprint({"config": stage_inputs(tiny, "params"), "upstream": {}})
    assert fps["train"] == hashing.fingerprint({"config": stage_inputs(tiny, "train"), "upstream": {"data": data}})
    assert fps["evaluate"] == hashing.fingerprint({"config": stage_inputs(tiny, "evaluate"),
                                                   "upstream": {"train": fps["train"]}})


def test_a_hub_source_is_named_not_hashed(tiny):
    import dataclasses
    hub = dataclasses.replace(tiny, data=dataclasses.replace(tiny.data, source="hub", name="org/set", revision="r1"))
    assert source_identity(hub) == {"hub": "org/set", "revision": "r1"}
