"""The stage graph is the one source: it names real config fields and tables, every stage has a body, and
it alone decides which fingerprints a config change moves."""
import dataclasses

import pytest
import yaml

import records.graph as stages
from pipeline.recipe import BODIES
from records.config import SAVE_CADENCE, ExperimentConfig
from records.config_reading import load_config
from records.fingerprints import stage_fingerprints
from records.schema import TABLES
from tests.conftest import ROOT

CONFIG = ROOT / "configs/tiny-cpu.yaml"


def leaf_fields(cls=ExperimentConfig, prefix=""):
    """Every setting a user can write, as a dotted name."""
    for f in dataclasses.fields(cls):
        if f.metadata.get("section"):
            yield from leaf_fields(type(f.default_factory()), f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}"


LEAVES = sorted(leaf_fields())

# Fields that cannot change alone without breaking a cross-field rule, changed with their partner.
PAIRED = {
    "model.num_labels": ["model.num_labels=4", "prompt.label_words=[a,b,c,d]"],
    "model.architecture": ["model.architecture=llama", "model.shape={vocab_size: 128, hidden_size: 64, "
                           "intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4}"],
    "tokenizer.source": ["tokenizer.source=hub", "tokenizer.name=some/tokenizer"],
    "data.file_pattern": ["data.file_pattern=other_{split}.parquet"],
    "prompt.label_words": ["prompt.label_words=[entails,neutral,contradicts]"],
    "lora.target_modules": ["lora.target_modules=[q_proj]"],
    "model.shape": ["model.shape.num_hidden_layers=3"],
    "runtime.device": ["runtime.device=cpu"],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A copy of the tiny data under both file patterns the tests use (the data fingerprint hashes files)."""
    import shutil
    folder = tmp_path_factory.mktemp("data") / "tiny-nli"
    shutil.copytree(ROOT / "data/tiny-nli", folder)
    for split in ("train", "validation", "test"):
        shutil.copy(folder / f"full_{split}.parquet", folder / f"other_{split}.parquet")
    return folder


def changed(source, overrides: list[str]) -> set[str]:
    """The stages whose fingerprint moves when the tiny config gets `overrides`."""
    base = [f"data.path={source}"]
    old, new = load_config(CONFIG, base, check_files=False), load_config(CONFIG, base + overrides, check_files=False)
    assert (old.to_dict() != new.to_dict()) == bool(overrides), overrides  # the change really changes the config
    a, b = stage_fingerprints(old), stage_fingerprints(new)
    return {s for s in stages.NAMES if a[s] != b[s]}


def a_change(name: str) -> list[str]:
    """--set overrides giving field `name` a valid value other than the tiny config's."""
    if name in PAIRED:
        return PAIRED[name]
    f = _field(name)
    value = load_config(CONFIG, check_files=False).to_dict()
    for part in name.split("."):
        value = value[part]
    if f.metadata.get("choices"):
        new = next(c for c in f.metadata["choices"] if c != value)
    elif isinstance(value, bool):
        new = not value
    elif isinstance(value, float):
        new = value / 2 if value else 0.01
    elif isinstance(value, int) or value is None and f.metadata.get("min") is not None:
        new = (value or 1) + 1
    elif value is None and f.metadata.get("gt") is not None:
        new = 3.0
    elif name == "data.path":
        return []  # `changed` sets it; see test_a_replaced_source_file_moves_the_data_stage
    else:
        new = "changed"
    return [f"{name}={yaml.safe_dump(new, default_flow_style=True).strip().removesuffix('...').strip()}"]


def _field(name: str) -> dataclasses.Field:
    cls = ExperimentConfig
    for part in name.split("."):
        f = next(f for f in dataclasses.fields(cls) if f.name == part)
        cls = type(f.default_factory()) if f.metadata.get("section") else None
    return f


def expected_from_graph(overrides: list[str]) -> set[str]:
    """What the graph says: the stages reading a changed field (or a section holding it), and their downstream."""
    # the save cadence is read by train but never fingerprinted (records.config.SAVE_CADENCE: it changes no result)
    names = {o.split("=", 1)[0] for o in overrides} - set(SAVE_CADENCE)
    readers = {s.name for s in stages.STAGES for name in names
               if any(name == r or name.startswith(r + ".") for r in s.reads)}
    # downstream closed over the declared upstream edges here, not with graph.downstream (the code under test)
    moved = set(readers)
    while grown := {s.name for s in stages.STAGES if set(s.upstream) & moved} - moved:
        moved |= grown
    return moved


def test_graph_names_real_fields_tables_and_bodies():
    leaves = set(LEAVES)
    for s in stages.STAGES:
        for r in s.reads:
            assert r in leaves or any(leaf.startswith(r + ".") for leaf in leaves), f"{s.name} reads unknown {r}"
        for u in s.upstream:
            assert stages.NAMES.index(u) < stages.NAMES.index(s.name), f"{s.name}: upstream {u} must come first"
        for t in s.writes + tuple(r.split(":")[0] for r in s.owns_rows):
            assert t in TABLES, f"{s.name} writes unknown table {t}"
        assert callable(BODIES[s.name].run), s.name
    # every table but the tuning table (written by `pipeline tune`) has a writer stage
    assert {t for t in TABLES if stages.writers(t)} == set(TABLES) - {"tuning"}
    assert stages.owner_of("predictions", "epoch_3") == "evaluate"
    assert stages.owner_of("predictions", "baseline_zeroshot") == "baseline"
    assert stages.owner_of("resources", "train") == "train" and stages.owner_of("predictions", "nope") is None
    assert stages.owned_rows("baseline", "predictions") == ["baseline_head", "baseline_zeroshot"]


def test_the_graph_is_importable_without_torch():
    import subprocess
    import sys
    code = ("import sys; from records.graph import NAMES, writers, owner_of, OWNER_KEY, downstream\n"
            "assert writers('predictions') == ('baseline', 'evaluate') and downstream('data') == "
            "('baseline', 'train', 'evaluate')\nassert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


@pytest.mark.parametrize("name,stages_moved", [
    ("eval.batch_size", {"baseline", "evaluate"}),               # every prediction, not the training
    ("train.learning_rate", {"train", "evaluate"}),              # the training and what reads its adapters
    ("lora.r", {"params", "train", "evaluate"}),                 # the parameter count too, not the baselines
    ("data.test.stride", {"data", "baseline", "train", "evaluate"}),
    ("model.fast_gelu", {"params", "baseline", "train", "evaluate"}),
    ("seed", {"baseline", "train", "evaluate"}),
    ("runtime.device", {"baseline", "train", "evaluate"}),
    ("runtime.threads", set()), ("description", set()), ("output.results_dir", set()),
])
def test_a_change_moves_exactly_these_fingerprints(source, name, stages_moved):
    assert changed(source, a_change(name)) == stages_moved


@pytest.mark.parametrize("name", [n for n in LEAVES if n != "data.path"])
def test_every_field_moves_exactly_what_the_graph_says(source, name):
    overrides = a_change(name)
    assert changed(source, overrides) == expected_from_graph(overrides)


def test_an_unchanged_config_moves_nothing(source):
    assert changed(source, []) == set()


def test_the_graph_drives_the_fingerprints(source, monkeypatch):
    """Declare one more read on a stage, and that stage (with its downstream) moves with the field; nothing
    else in the code has to change."""
    assert changed(source, ["train.epochs=4"]) == {"train", "evaluate"}
    params = stages.BY_NAME["params"]
    monkeypatch.setitem(stages.BY_NAME, "params", dataclasses.replace(params, reads=params.reads + ("train.epochs",)))
    assert changed(source, ["train.epochs=4"]) == {"params", "train", "evaluate"}


def test_a_replaced_source_file_moves_the_data_stage(tmp_path):
    import shutil
    shutil.copytree(ROOT / "data/tiny-nli", tmp_path / "d")
    before = stage_fingerprints(load_config(CONFIG, [f"data.path={tmp_path / 'd'}"]))
    import pandas as pd
    df = pd.read_parquet(tmp_path / "d/full_test.parquet")
    df.loc[0, "premise"] = "A different premise."
    df.to_parquet(tmp_path / "d/full_test.parquet", index=False)
    after = stage_fingerprints(load_config(CONFIG, [f"data.path={tmp_path / 'd'}"]))
    assert {s for s in stages.NAMES if before[s] != after[s]} == {"data", "baseline", "train", "evaluate"}

