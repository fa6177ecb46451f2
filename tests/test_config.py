"""Bad configs: one clear line naming the field and the fix, exit code 2, nothing written."""
import textwrap

import pytest

from pipeline.config import ConfigError, fingerprint, load_config, stage_config
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


def test_good_config_loads_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.run == "cfg-test"
    assert cfg.lora.r == 16 and cfg.lora.target_modules == ["q_proj", "v_proj", "fc1", "fc2"]
    assert cfg.data.train.stride == 550 and cfg.data.train.limit == 1000
    assert cfg.data.test.stride == 100


BAD = [
    # (yaml edit, expected text in the one-line message)
    ("train: {epochs: 0}", "train.epochs: must be >= 1, got 0"),
    ("train: {learning_rate: -1}", "train.learning_rate: must be > 0.0"),
    ("train: {learning_rate: '2e-4'}", "train.learning_rate: must be a number"),
    ("train: {epoch: 3}", "train.epoch: unknown key (did you mean 'epochs'?)"),
    ("lora: {r: sixteen}", "lora.r: must be an integer"),
    ("lora: {target_modules: q_proj}", "lora.target_modules: must be a list of strings"),
    ("lora: {target_modules: []}", "lora.target_modules: must name at least one module"),
    ("lora: {dropout: 1.5}", "lora.dropout: must be <= 0.99"),
    ("quantization: {compute_dtype: bf16}", "quantization.compute_dtype: must be one of"),
    ("quantization: {load_in_4bit: 'yes'}", "quantization.load_in_4bit: must be true or false"),
    ("modle: {}", "modle: unknown key (did you mean 'model'?)"),
    ("run: 'has space'", "run: must be a folder name"),
    ("prompt: {template: templates/missing.j2}", "prompt.template:"),
    ("prompt: {label_words: [entails, contradicts]}", "prompt.label_words: needs 3 words"),
    ("prompt: {label_words: [yes, no, maybe]}", "prompt.label_words: must be a list of strings, got [True, False"),
    ("data: {path: no/such/folder}", "data.path: folder"),
    ("data: {file_pattern: train.parquet}", "data.file_pattern: must contain {split}"),
    ("data: {test: {stride: 0}}", "data.test.stride: must be >= 1"),
    ("data: {train: {source_split: dev}}", "data.train.source_split: must be train, validation or test"),
    ("runtime: {device: gpu}", "runtime.device: must be one of"),
    ("model: {source: gguf, name: missing.gguf}", "model.name: GGUF file"),
    ("tokenizer: {source: model}", "tokenizer.source: a random-weights model has no tokenizer"),
]


@pytest.mark.parametrize("edit,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_config_raises_one_line(tmp_path, edit, expected):
    import yaml
    raw = yaml.safe_load(GOOD.replace("RESULTS", str(tmp_path / "r")).replace("CKPT", str(tmp_path / "c")))
    for k, v in yaml.safe_load(edit).items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert expected in msg, msg
    assert "\n" not in msg
    assert msg.startswith(str(p)) or "bad.yaml" in msg


def test_cli_bad_config_exit_2_and_nothing_written(tmp_path):
    p = write(tmp_path, GOOD + "train: {epochs: -3}\n")
    r = cli("run", p)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith("error:")]
    assert lines == [r.stderr.strip().splitlines()[-1]]
    assert "train.epochs: must be >= 1, got -3" in lines[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "ckpt").exists()


def test_cli_missing_file_and_bad_yaml(tmp_path):
    r = cli("run", tmp_path / "nope.yaml")
    assert r.returncode == 2 and "config file not found" in r.stderr
    bad = tmp_path / "broken.yaml"
    bad.write_text("run: x\ntrain: {epochs: 3\n")
    r = cli("run", bad)
    assert r.returncode == 2 and "is not valid YAML" in r.stderr


def test_cli_bad_stage_name(tmp_path):
    r = cli("run", write(tmp_path, GOOD), "--stages", "data,trian")
    assert r.returncode == 2 and "--stages: unknown stage 'trian'" in r.stderr


def test_extends_and_overrides(tmp_path):
    base = write(tmp_path, GOOD)
    child = tmp_path / "child.yaml"
    child.write_text("extends: c.yaml\nrun: child\ntrain: {epochs: 2}\n")
    cfg = load_config(child, ["train.batch_size=4", "lora.target_modules=[q_proj]"])
    assert (cfg.run, cfg.train.epochs, cfg.train.batch_size, cfg.lora.target_modules) == ("child", 2, 4, ["q_proj"])
    assert cfg.model.shape["hidden_size"] == 32  # inherited from the base file
    assert load_config(base).train.epochs == 5


def test_stage_fingerprints_follow_their_sections(tmp_path):
    a = load_config(write(tmp_path, GOOD))
    b = load_config(write(tmp_path, GOOD), ["eval.batch_size=3"])
    assert fingerprint(stage_config(a, "train")) == fingerprint(stage_config(b, "train"))
    assert fingerprint(stage_config(a, "evaluate")) != fingerprint(stage_config(b, "evaluate"))


def test_shipped_configs_are_valid():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert first.startswith("#"), f"{path.name} must open with a comment giving its command"
        assert "python -m pipeline" in path.read_text().split("\n\n")[0], path.name
        if "trials:" in path.read_text():
            from pipeline.tune import read_grid
            read_grid(path)
        else:
            load_config(path, check_files=False)
