"""Config validation: every field checked on its dataclass (nested `model.shape.*` included, against the
architecture's own config class) before anything loads; a bad value is one line naming the field and the
fix, exit code 2, nothing written."""
import subprocess
import sys
import textwrap

import pytest
import yaml

from pipeline.configs import load_config
from records.config import ConfigError, ExperimentConfig, LoraConfig, SplitSample
from tests.conftest import ROOT, cli

GOOD = textwrap.dedent("""\
    run: cfg-test
    data: {source: local, path: data/tiny-nli}
    model: {source: random, architecture: phi, shape: {vocab_size: 128, hidden_size: 32,
            intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2}}
    tokenizer: {source: built}
    output: {results_dir: RESULTS, checkpoint_dir: CKPT}
""")


def write(tmp_path, text: str):
    text = text.replace("RESULTS", str(tmp_path / "results")).replace("CKPT", str(tmp_path / "ckpt"))
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def merged(base: dict, edit: dict) -> dict:
    out = dict(base)
    for k, v in edit.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_good_config_loads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.run == "cfg-test"
    assert cfg.lora.r == 16 and cfg.lora.target_modules == ["q_proj", "v_proj", "fc1", "fc2"]
    # a nested section keeps its own defaults (data.train: every 550th, first 1,000), not the class's
    assert cfg.data.train.stride == 550 and cfg.data.train.limit == 1000
    assert cfg.data.test.stride == 100 and cfg.data.test.source_split == "test"
    assert cfg.model.shape["hidden_size"] == 32
    assert isinstance(cfg.train.learning_rate, float)


BAD = [
    # (yaml edit merged into GOOD, expected text in the one-line message)
    ("train: {epochs: 0}", "train.epochs: must be >= 1, got 0"),
    ("train: {learning_rate: -1}", "train.learning_rate: must be > 0.0"),
    ("train: {learning_rate: '2e-4'}", "train.learning_rate: must be a number, got '2e-4' (write 2e-4 as 2.0e-4"),
    ("train: {learning_rate: .nan}", "train.learning_rate: must be a finite number, got nan"),
    ("train: {warmup_ratio: .inf}", "train.warmup_ratio: must be a finite number, got inf"),
    ("train: {max_grad_norm: -1}", "train.max_grad_norm: must be >= 0.0, got -1"),
    ("train: {scheduler: cosin}", "train.scheduler: must be one of 'linear', 'cosine', 'constant', got 'cosin' "
                                  "(did you mean 'cosine'?)"),
    ("train: {micro_batch_size: 3}", "train.micro_batch_size: 3 does not divide batch_size 8"),
    ("train: {epoch: 3}", "train.epoch: unknown key (did you mean 'epochs'?)"),
    ("lora: {r: sixteen}", "lora.r: must be an integer"),
    ("lora: {target_modules: q_proj}", "lora.target_modules: must be a list of strings"),
    ("lora: {target_modules: []}", "lora.target_modules: must name at least one"),
    ("lora: {dropout: 1.5}", "lora.dropout: must be <= 0.99"),
    ("lora: {dropout: -.inf}", "lora.dropout: must be a finite number"),
    ("lora: {bias: some}", "lora.bias: must be one of 'none', 'all', 'lora_only'"),
    ("quantization: {compute_dtype: bf16}", "quantization.compute_dtype: must be one of"),
    ("quantization: {quant_type: nf5}", "quantization.quant_type: must be one of 'nf4', 'fp4', got 'nf5' "
                                        "(did you mean 'nf4'?)"),
    ("quantization: {load_in_4bit: 'yes'}", "quantization.load_in_4bit: must be true or false"),
    ("modle: {}", "modle: unknown key (did you mean 'model'?)"),
    ("data: 5", "data: must be a mapping of settings, got int"),
    ("run: 'has space'", "run: must be a folder name"),
    ("description: 5", "description: must be a string, got 5"),
    ("seed: -1", "seed: must be >= 0, got -1"),
    ("prompt: {template: templates/missing.j2}", "prompt.template:"),
    ("prompt: {label_words: [entails, contradicts]}", "prompt.label_words: needs 3 words"),
    ("prompt: {label_words: [yes, no, maybe]}", "prompt.label_words: must be a list of strings, got [True, False"),
    ("data: {path: no/such/folder}", "data.path: folder"),
    ("data: {path: null}", "data.path: required when source is local"),
    ("data: {file_pattern: train.parquet}", "data.file_pattern: must contain {split}"),
    ("data: {test: {stride: 0}}", "data.test.stride: must be >= 1"),
    ("data: {test: {limit: 0}}", "data.test.limit: must be >= 1, got 0"),
    ("data: {validation: {offset: 1.5}}", "data.validation.offset: must be an integer"),
    ("data: {train: {source_split: dev}}", "data.train.source_split: must be one of 'train', 'validation', 'test'"),
    ("runtime: {device: gpu}", "runtime.device: must be one of"),
    ("runtime: {sample_interval_s: .nan}", "runtime.sample_interval_s: must be a finite number"),
    ("runtime: {gpu_memory_cap_gib: 0}", "runtime.gpu_memory_cap_gib: must be > 0.0"),
    ("runtime: {threads: 0}", "runtime.threads: must be >= 1"),
    ("eval: {batch_size: 2.5}", "eval.batch_size: must be an integer, got 2.5"),
    ("model: {num_labels: 1}", "model.num_labels: must be >= 2"),
    ("model: {source: gguf, name: missing.gguf}", "model.name: GGUF file"),
    ("model: {architecture: null}", "model.architecture: required when source is random"),
    ("model: {architecture: phii}", "model.architecture: 'phii' is not a transformers model type (did you mean 'phi'?)"),
    ("model: {source: hub, architecture: null}", "model.shape: only used with an architecture"),
    ("model: {shape: [1, 2]}", "model.shape: must be a mapping"),
    ("model: {shape: {hidden_sise: 64}}", "model.shape.hidden_sise: not a setting of PhiConfig "
                                          "(did you mean 'hidden_size'?)"),
    ("model: {shape: {hidden_size: big}}", "model.shape.hidden_size: expected int, got str"),
    ("model: {shape: {num_hidden_layers: 0}}", "model.shape.num_hidden_layers: must be >= 1, got 0"),
    ("model: {shape: {resid_pdrop: .nan}}", "model.shape.resid_pdrop: must be a finite number"),
    ("model: {shape: {resid_pdrop: 1.5}}", "model.shape.resid_pdrop: a dropout probability must be in [0, 1)"),
    ("model: {shape: {partial_rotary_factor: half}}", "model.shape.partial_rotary_factor: expected float"),
    ("model: {shape: {num_attention_heads: 3}}", "model.shape.hidden_size: 32 does not split into 3 attention heads"),
    ("tokenizer: {source: model}", "tokenizer.source: a random-weights model has no tokenizer"),
    ("tokenizer: {source: hub}", "tokenizer.name: required when source is hub"),
    ("tokenizer: {max_length: 4}", "tokenizer.max_length: must be >= 8"),
]


@pytest.mark.parametrize("edit,expected", BAD, ids=[b[1][:50] for b in BAD])
def test_bad_config_raises_one_line(tmp_path, edit, expected):
    raw = merged(yaml.safe_load(GOOD.replace("RESULTS", str(tmp_path / "r")).replace("CKPT", str(tmp_path / "c"))),
                 yaml.safe_load(edit))
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: "), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_sections_check_themselves_when_built_in_python():
    """Like peft's LoraConfig: the checks live on the dataclass, not in the YAML loader."""
    with pytest.raises(ConfigError, match=r"^r: must be >= 1, got 0$"):
        LoraConfig(r=0)
    with pytest.raises(ConfigError, match=r"^stride: must be >= 1"):
        SplitSample(stride=0)
    assert LoraConfig(dropout=0).dropout == 0.0 and isinstance(LoraConfig(dropout=0).dropout, float)
    with pytest.raises(ConfigError, match=r"^run: must be a folder name"):
        ExperimentConfig()  # a config must name its run


def test_every_field_has_help_text():
    """The report labels settings with these (one source), so none may be missing."""
    import dataclasses

    def walk(cls, prefix=""):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{prefix}{f.name} has no help text"
            if f.metadata.get("section"):
                walk(type(f.default_factory()), f"{prefix}{f.name}.")
    walk(ExperimentConfig)


def test_cli_bad_config_exit_2_and_nothing_written(tmp_path):
    p = write(tmp_path, GOOD + "train: {epochs: -3}\n")
    r = cli("run", p)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: {p}: train.epochs: must be >= 1, got -3"]
    assert not (tmp_path / "results").exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("command", ["run", "params", "status"])
def test_cli_bad_shape_is_refused_before_anything_loads(tmp_path, command):
    p = write(tmp_path, GOOD.replace("hidden_size: 32", "hidden_size: 32, hidden_sise: 3"))
    r = cli(command, p)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {p}: model.shape.hidden_sise: not a setting of PhiConfig (did you mean 'hidden_size'?)"]
    assert r.stdout == ""
    assert not (tmp_path / "results").exists() and not (tmp_path / "ckpt").exists()


def test_cli_missing_file_and_bad_yaml(tmp_path):
    r = cli("run", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "config file not found" in r.stderr
    bad = tmp_path / "broken.yaml"
    bad.write_text("run: x\ntrain: {epochs: 3\n")
    r = cli("run", bad)
    assert r.returncode == 2 and "is not valid YAML" in r.stderr
    r = cli("run", write(tmp_path, GOOD), "--set", "train.epochs")
    assert r.returncode == 2 and "--set train.epochs: expected KEY=VALUE" in r.stderr


def test_extends_and_overrides(tmp_path):
    base = write(tmp_path, GOOD)
    child = tmp_path / "child.yaml"
    child.write_text("extends: c.yaml\nrun: child\ntrain: {epochs: 2}\n")
    cfg = load_config(child, ["train.batch_size=4", "lora.target_modules=[q_proj]", "model.shape.hidden_size=64"])
    assert (cfg.run, cfg.train.epochs, cfg.train.batch_size, cfg.lora.target_modules) == ("child", 2, 4, ["q_proj"])
    assert cfg.model.shape["hidden_size"] == 64 and cfg.model.shape["num_hidden_layers"] == 1  # merged, not replaced
    assert load_config(base).train.epochs == 5
    with pytest.raises(ConfigError, match=r"child.yaml: train.epochs: must be >= 1"):
        load_config(child, ["train.epochs=0"])


def test_config_module_needs_neither_torch_nor_transformers():
    """The report environment reads the fields' help text from records.config and has neither library;
    there the architecture check is skipped (nothing can load a model there either)."""
    code = textwrap.dedent("""\
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('torch', 'transformers'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        import dataclasses
        from records.config import ExperimentConfig
        from records.config_reading import load_config
        assert dataclasses.fields(ExperimentConfig)[0].metadata['help']
        cfg = load_config('configs/tiny-cpu.yaml', check_files=False)
        assert cfg.model.shape['hidden_size'] == 64
        assert not {'torch', 'transformers'} & set(sys.modules)
    """)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_shipped_configs_are_valid():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), f"{path.name} must open with a comment giving its command"
        head = path.read_text().split("\n\n")[0]
        assert "python -m pipeline" in head or "accelerate launch" in head and "-m pipeline run" in head, path.name
        if "trials:" in path.read_text():
            from pipeline.tune import read_grid
            read_grid(path)
        else:
            load_config(path, check_files=False)


def test_trust_remote_code_is_off_unless_a_config_asks(tmp_path):
    """Code from a model repository never runs by default; asking for it takes a real boolean."""
    base = GOOD.replace("RESULTS", str(tmp_path / "r")).replace("CKPT", str(tmp_path / "c"))
    assert load_config(write(tmp_path, base)).model.trust_remote_code is False
    raw = yaml.safe_load(base)
    for value, ok in ((True, True), ("yes", False), (1, False)):
        raw["model"]["trust_remote_code"] = value
        p = tmp_path / "remote.yaml"
        p.write_text(yaml.safe_dump(raw))
        if ok:
            assert load_config(p).model.trust_remote_code is True
        else:
            with pytest.raises(ConfigError, match=r"model.trust_remote_code: must be true or false"):
                load_config(p)


def test_config_descriptions_carry_no_counts_a_run_can_contradict():
    """A description is read beside the run's own figures: "1,000 rows" beside 988 used rows would be a
    contradiction. Counts of rows and batches belong to the report, which takes them from the run."""
    import re

    import yaml

    from records.config import PROJECT_ROOT
    count = re.compile(r"\d[\d,.]*\s*(?:\w+\s+){0,3}(?:rows|examples|pairs|per GPU)|batch(?: size)?\s*\d", re.I)
    for path in sorted((PROJECT_ROOT / "configs").glob("*.yaml")):
        description = (yaml.safe_load(path.read_text()) or {}).get("description") or ""
        assert not count.search(description), f"{path.name}: {description}"
