"""Bad input, of every kind a user can give, is one line on stderr, exit code 2, and no file changed.

Each case starts from a finished small run (results, checkpoints) and a copy of its data files, spoils one
input (a config field, a config file, a data file, a model file, the command line, the manifest, a checkpoint,
the results folder itself), runs the command as `python -m pipeline` does (pipeline.cli.main, in this process),
and compares the whole folder tree, file by file, before and after.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from tests.conftest import ROOT, sets
from tests.pipeline.reliability import CONFIG, copy_run, folder, overrides, tree_state


class Env:
    """The case's folder: the finished run, a copy of its data (used once a case spoils a data file; until then
    the run reads the data it was made from, so every stage is up to date and a case must get past that)."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        shutil.copytree(ROOT / "data/tiny-nli", self.data)
        self.own_data = False

    def argv(self, *extra_sets: str, command: str = "run", config: str = CONFIG) -> list[str]:
        data = [f"data.path={self.data}"] if self.own_data else []
        return [command, config, *sets(overrides(self.root, *data, *extra_sets))]

    def file(self, name: str, content: bytes | str = b"") -> Path:
        path = self.root / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def split(self, name: str, fn) -> None:
        self.own_data = True
        path = self.data / f"full_{name}.parquet"
        fn(pd.read_parquet(path)).to_parquet(path, index=False)

    @property
    def manifest(self) -> Path:
        return folder(self.root) / "manifest.json"

    def edit_manifest(self, fn) -> None:
        self.manifest.write_text(fn(self.manifest.read_text()))


def _data_file(name: str, content: bytes | None):
    """Replace (or with None, delete) one split file of the case's data copy."""
    def setup(env):
        env.own_data = True
        path = env.data / f"full_{name}.parquet"
        path.unlink() if content is None else path.write_bytes(content)
    return setup


def _set(*kv):
    return lambda env: env.argv(*kv)


def _then(setup, *kv, **kw):
    def case(env):
        setup(env)
        return env.argv(*kv, **kw)
    return case


def _at(row, **values):
    def fn(df):
        for col, v in values.items():
            df[col] = df[col].astype(object)
            df.loc[row, col] = v
        return df
    return fn


def _manifest_json(fn):
    return lambda env: env.edit_manifest(lambda text: json.dumps(fn(json.loads(text)), indent=2))


def _config_file(text):
    def case(env):
        return ["run", str(env.file("bad.yaml", text))]
    return case


def _grid(text, *extra):
    def case(env):
        return env.argv(command="tune")[:2] + [str(env.file("grid.yaml", text))] + env.argv()[2:] + list(extra)
    return case


def _damaged_checkpoint(env):
    path = env.root / "checkpoints" / "small" / "final" / "adapter_model.safetensors"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))


def _holding_the_lock(env):
    from records.lock import RunLock
    env.lock = RunLock(folder(env.root), "python -m pipeline run another.yaml")
    env.lock.acquire()
    return env.argv()


def _two_folders_extending_each_other(env):
    env.file("a.yaml", "extends: b.yaml\n")
    return ["run", str(env.file("b.yaml", "extends: a.yaml\n"))]


def _deep_manifest(command):
    """The manifest of the finished run with a value 100,000 levels deep, read by `command`."""
    def case(env):
        env.edit_manifest(lambda text: text[:-2] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}\n")
        if command == "status":
            return env.argv(command="status")
        return [command, str(folder(env.root))] + (["--out", str(env.root / "out")] if command == "export" else [])
    return case


CASES = [
    # --- config fields (as --set; the same checks read YAML) ---
    ("epochs zero", _set("train.epochs=0"), "train.epochs: must be >= 1, got 0"),
    ("learning rate NaN", _set("train.learning_rate=.nan"), "train.learning_rate: must be a finite number, got nan"),
    ("warmup infinite", _set("train.warmup_ratio=.inf"), "train.warmup_ratio: must be a finite number, got inf"),
    ("dropout out of range", _set("lora.dropout=1.5"), "lora.dropout: must be <= 0.99, got 1.5"),
    ("shape typo", _set("model.shape.hidden_sise=3"), "model.shape.hidden_sise: not a setting of PhiConfig"),
    ("heads do not split", _set("model.shape.num_attention_heads=3"),
     "model.shape.hidden_size: 64 does not split into 3 attention heads"),
    ("shape dropout NaN", _set("model.shape.resid_pdrop=.nan"), "model.shape.resid_pdrop: must be a finite number"),
    ("unknown section", _set("modle={}"), "modle: unknown key (did you mean 'model'?)"),
    ("run name escapes its folder", _set("run=../escape"), "run: must be a folder name"),
    ("seed negative", _set("seed=-1"), "seed: must be >= 0, got -1"),
    ("eval batch a fraction", _set("eval.batch_size=2.5"), "eval.batch_size: must be an integer, got 2.5"),
    ("max_length too small", _set("tokenizer.max_length=4"), "tokenizer.max_length: must be >= 8"),
    ("too few label words", _set("prompt.label_words=[a,b]"), "prompt.label_words: needs 3 words"),
    ("file pattern without {split}", _set("data.file_pattern=x.parquet"), "data.file_pattern: must contain {{split}}"),
    ("micro-batch does not divide", _set("train.micro_batch_size=3"), "train.micro_batch_size: 3 does not divide"),
    ("compute dtype misspelt", _set("quantization.compute_dtype=bf16"), "quantization.compute_dtype: must be one of"),
    ("no LoRA target", _set("lora.target_modules=[]"), "lora.target_modules: must name at least one"),
    ("LoRA target matching no module", _set("lora.target_modules=[q_proj,qv_proj]"),
     "lora.target_modules: 'qv_proj' matches no module of the model (its linear layers are named"),
    ("prompt template missing", _set("prompt.template=templates/missing.j2"), "prompt.template: "),
    # --- issue 18: bounded parsing, names, echoed control characters ---
    ("config alias bomb", _config_file("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))),
     "is not valid YAML (more than 64 aliases"),
    ("config nested 5,000 deep", _config_file("run: " + "[" * 5000 + "]" * 5000 + "\n"),
     "is not valid YAML (nested deeper than 32 levels)"),
    ("--set value nested 5,000 deep", _set("model.shape=" + "{a: " * 5000 + "1" + "}" * 5000),
     "...: the value is not valid YAML, or nested deeper than 32 levels"),
    ("run name of 300 characters", _set("run=" + "r" * 300), "run: must be a folder name of at most 100"),
    ("terminal escape in --set", lambda env: [*env.argv(), "--set", "\x1b]0;owned\x07\x1b[2J"],
     "--set \\x1b]0;owned\\x07\\x1b[2J: expected KEY=VALUE"),
    ("grid alias bomb", _grid("epochs: 1\ntrials: &a [{}]\n" + "".join(f"k{i}: [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                                                                        for i in range(20))),
     "grid.yaml: is not valid YAML (more than 64 aliases"),
    ("grid a list", _grid("- {train.learning_rate: 1.0e-3}\n"), "grid.yaml: must be a mapping with `epochs` and `trials`"),
    ("grid not YAML", _grid("epochs: [1,\ntrials: {\n"), "grid.yaml: line"),
    ("grid not UTF-8", _grid(b"epochs: 1\ntrials: [{train.learning_rate: 1.0e-3}]\n# \xff\xfe\n"),
     "grid.yaml: not UTF-8 text"),
    ("manifest nested 100,000 deep", lambda env: (env.edit_manifest(
        lambda text: text[:-2] + ', "deep": ' + "[" * 100000 + "]" * 100000 + "}\n"), env.argv())[1],
     "malformed manifest, not valid JSON (line 1: nested deeper than 64 levels)"),
    *[(f"manifest nested 100,000 deep: {command}", _deep_manifest(command), "nested deeper than 64 levels")
      for command in ("status", "verify", "export")],
    ("a GPU that is not there", _set("runtime.device=cuda"),
     "runtime.device: cuda was asked for but no GPU is visible (fix: runtime.device: auto)"),
    ("results folder is a file", lambda env: env.argv(f"output.results_dir={env.file('taken')}"),
     "is a file, not a folder (fix: point output.results_dir at a folder)"),
    ("model the hub cannot serve", _set("model.source=hub", "model.name=nobody/no-such-model",
                                        "model.architecture=null", "model.shape={}"),
     "model.name: could not load 'nobody/no-such-model' from the Hugging Face hub"),
    # --- config files and --set syntax ---
    ("config file missing", lambda env: ["run", str(env.root / "none.yaml")], "config file not found"),
    ("config not YAML", _config_file("run: x\ntrain: {epochs: 3\n"), "is not valid YAML"),
    ("config a list", _config_file("- run\n- x\n"), "must be a mapping of settings at the top level"),
    ("extends loop", _two_folders_extending_each_other, "`extends` loops back to itself"),
    ("--set without =", lambda env: env.argv() + ["--set", "train.epochs"], "--set train.epochs: expected KEY=VALUE"),
    ("--set value not YAML", _set("train.epochs=[1"), "the value is not valid YAML"),
    # --- data files ---
    ("data folder missing", _set("data.path=/nonexistent/tiny"), "data.path: folder /nonexistent/tiny not found"),
    ("split file missing", _then(_data_file("test", None)),
     "full_test.parquet not found (fix: add that file or change data.file_pattern)"),
    ("split not parquet", _then(_data_file("test", b"premise,hypothesis\n")),
     "full_test.parquet is not a readable parquet file"),
    ("split of zero bytes", _then(_data_file("test", b"")),
     "full_test.parquet is empty (0 bytes)"),
    ("split without labels", _then(lambda env: env.split("test", lambda df: df.drop(columns=["label"]))),
     "data: split 'test' lacks columns ['label']"),
    ("label outside the label set", _then(lambda env: env.split("test", _at(1, label=7))),
     "data: split 'test' has labels outside -1..2 (e.g. 7)"),
    ("split all unlabelled", _then(lambda env: env.split("test", lambda df: df.assign(label=-1))),
     "data.test: all 4 rows sampled from split 'test' have no gold label (-1)"),
    ("null premise", _then(lambda env: env.split("test", _at(3, premise=None))),
     "data: split 'test' row 3: premise is null"),
    ("null hypothesis", _then(lambda env: env.split("validation", _at(0, hypothesis=None))),
     "data: split 'validation' row 0: hypothesis is null"),
    ("premise a number", _then(lambda env: env.split("test", lambda df: df.assign(premise=5))),
     "data: split 'test' row 1: premise is int 5, not text"),
    ("split a subset", _then(lambda env: env.split("test", lambda df: df.iloc[5:])), "holds a subset"),
    ("offset past the end", _set("data.test.offset=100000"), "data.test: offset 100000 is past the end of split"),
    ("overlapping rows", _set("data.validation.source_split=test", "data.validation.stride=2",
                              "data.validation.offset=1"), "are in both"),
    # --- model and tokenizer files ---
    ("model file not a GGUF", lambda env: env.argv("model.source=gguf", f"model.name={env.file('m.gguf', 'PK')}"),
     "model.name: {root}/m.gguf is not a GGUF file"),
    ("model GGUF missing", _set("model.source=gguf", "model.name=/nonexistent/m.gguf"),
     "model.name: GGUF file /nonexistent/m.gguf not found"),
    ("tokenizer file not a GGUF",
     lambda env: env.argv("tokenizer.source=gguf", f"tokenizer.name={env.file('t.gguf', b'<html>')}"),
     "tokenizer.name: {root}/t.gguf is not a GGUF file"),
    ("model folder missing", _set("model.source=local", "model.name=/nonexistent/model"),
     "model.name: folder /nonexistent/model not found"),
    # --- command line ---
    ("empty --stages", lambda env: env.argv() + ["--stages", ""], "--stages: empty (choose from"),
    ("unknown stage", lambda env: env.argv() + ["--stages", "data,trian"], "--stages: unknown stage 'trian'"),
    ("stage without its input", lambda env: env.argv("train.learning_rate=0.001") + ["--stages", "evaluate"],
     "stage evaluate needs stage train, which is stale (inputs changed) (fix: --stages train,evaluate"),
    ("tune --jobs 0", _grid("epochs: 1\ntrials:\n  - {train.learning_rate: 1.0e-3}\n", "--jobs", "0"),
     "--jobs: must be 1 or more, got 0"),
    ("tune grid missing", lambda env: ["tune", CONFIG, str(env.root / "no-grid.yaml")] + env.argv()[2:],
     "no-grid.yaml: grid file not found"),
    ("tune grid key not tunable", _grid("epochs: 1\ntrials:\n  - {seed: 3}\n"), "trials[1].seed: not tunable here"),
    # --- the manifest ---
    ("manifest truncated", _then(lambda env: env.edit_manifest(lambda t: t[: len(t) // 2])),
     "malformed manifest, not valid JSON (line"),
    ("manifest with NaN", _then(lambda env: env.edit_manifest(lambda t: t.replace('"seconds": ', '"seconds": NaN, "x": ', 1))),
     "malformed manifest, NaN is not a JSON number (line"),
    ("manifest a list", _then(lambda env: env.manifest.write_text("[1, 2]")), "malformed manifest, expected a JSON object"),
    ("manifest from newer code", _then(_manifest_json(lambda m: {**m, "schema_version": 99})),
     "schema_version 99 is newer than this code understands"),
    ("manifest stage not a mapping", _then(_manifest_json(lambda m: {**m, "stages": {**m["stages"], "train": "done"}})),
     "malformed manifest, stages.train must be a mapping"),
    ("manifest table record malformed", _then(_manifest_json(lambda m: {**m, "tables": {**m["tables"], "samples": "ok"}})),
     "malformed manifest, `tables.samples` must be a mapping of sha256, rows, bytes"),
    # --- checkpoints and the folder itself ---
    ("damaged checkpoint for evaluate", _then(_damaged_checkpoint, "eval.batch_size=5"),
     "stage evaluate: checkpoint final is damaged: "),
    ("results folder in use", _holding_the_lock, "is in use by pid"),
]


def test_there_are_at_least_forty_distinct_bad_inputs():
    assert len({c[0] for c in CASES}) == len(CASES) >= 40


@pytest.mark.parametrize("name,case,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_no_file_changed(small_reference, tmp_path, monkeypatch, capsys, name, case,
                                                          expected):
    if name == "a GPU that is not there":
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache: the hub is unreachable here
    monkeypatch.chdir(tmp_path)
    env = Env(copy_run(small_reference.complete, tmp_path))
    argv = case(env)
    before = tree_state(tmp_path)
    capsys.readouterr()
    try:
        code = main(argv)
    finally:
        if getattr(env, "lock", None) is not None:
            env.lock.release()
            before = {k: v for k, v in before.items() if not k.endswith(".lock")}
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and expected.format(root=tmp_path) in line, line
    assert "Traceback" not in err
    assert tree_state(tmp_path) == before
