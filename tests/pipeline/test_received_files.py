"""Received files are data, never code (issue 18): a config, a results folder or an adapter folder from someone
else cannot run a command through a jinja2 template, and is refused with one line (exit 2) before anything runs."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys

import jinja2.exceptions
import pytest

from pipeline.model.prompts import Prompter
from records.errors import ConfigError
from records.manifest import Manifest
from records.store import RunStore
from records.templates import checked, environment
from tests.conftest import ROOT, cli, sets, tiny_overrides
from tests.pipeline.reliability import tree_state

CONFIG = ROOT / "configs/tiny-cpu.yaml"
OWN = (ROOT / "templates/nli_prompt.j2").read_text()


def payload(marker) -> str:
    """A template that, rendered by a plain jinja2.Environment, runs `touch marker`."""
    return "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"


def one_line_exit_2(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_the_payload_runs_code_in_a_plain_environment(tmp_path):
    """The premise of the cases below: unsandboxed, this template runs a command."""
    marker = tmp_path / "ran"
    jinja2.Environment().from_string(payload(marker)).render()
    assert marker.exists()


@pytest.mark.parametrize("text, named", [
    ("{{ cycler.__init__ }}", "attribute access"),
    ("{{ premise.__class__ }}", "attribute access"),
    ("{{ premise['__class__'] }}", "item access"),
    ("{{ labels.pop() }}", "a call"),
    ("{{ range(3) }}", "a call"),
    ("{{ lipsum }}", "variable 'lipsum'"),
    ("{% for x in labels %}{{ x }}{% endfor %}", "For"),
    ("{% include 'nli_prompt.j2' %}", "Include"),
    ("{{ labels | map(attribute='x') | join }}", "filter 'map'"),
    ("{{ labels | join(*labels) }}", "filter 'join'"),
])
def test_anything_beyond_variables_and_filters_is_refused(text, named):
    with pytest.raises(ConfigError) as e:
        checked(text, "prompt.template: x.j2")
    assert named in str(e.value) and "\n" not in str(e.value)


def test_the_projects_own_template_passes_and_renders_in_the_sandbox():
    assert "Premise: a" in checked(OWN, "t").render(premise="a", hypothesis="b", labels=["x", "y", "z"])
    assert type(environment()).__name__ == "ImmutableSandboxedEnvironment"
    # The second wall: even unchecked, the sandbox refuses the reach for Python's internals.
    with pytest.raises(jinja2.exceptions.SecurityError):
        environment().from_string(payload("/nonexistent/x")).render()


def test_a_template_outside_templates_is_refused_even_through_a_link(tmp_path, monkeypatch):
    import records.templates
    outside = tmp_path / "own.j2"
    outside.write_text(OWN)
    with pytest.raises(ConfigError, match="outside the project's templates/ folder"):
        Prompter(outside, ["a", "b", "c"])
    # A link planted inside templates/ that points elsewhere is judged by where it points.
    monkeypatch.setattr(records.templates, "TEMPLATE_DIR", tmp_path / "templates")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nli.j2").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the project's templates/ folder"):
        Prompter(tmp_path / "templates" / "nli.j2", ["a", "b", "c"])
    (tmp_path / "templates" / "real.j2").write_text(OWN)
    assert Prompter(tmp_path / "templates" / "real.j2", ["a", "b", "c"])("p", "h").startswith("Premise: p")


def test_a_config_whose_template_is_itself_runs_no_code(tmp_path):
    """The issue's case: a config naming itself as the prompt template, holding the payload in a comment."""
    marker = tmp_path / "ran"
    config = tmp_path / "paper.yaml"
    config.write_text(f"extends: {CONFIG}\nprompt: {{template: {config}}}\n# {payload(marker)}\n")
    before = tree_state(ROOT / "templates")
    for command in ("run", "status"):
        line = one_line_exit_2(cli(command, config, *sets(tiny_overrides(tmp_path))))
        assert "prompt.template" in line and "outside the project's templates/ folder" in line
    assert not marker.exists() and not (tmp_path / "results").exists()
    assert tree_state(ROOT / "templates") == before


def _received_tuned_folder(tmp_path, chosen: list[str], note: str = ""):
    folder = tmp_path / "received" / "colleague"
    m = Manifest()
    m.extra = {"note": note}  # the manifest itself holds the payload: it is the template it names
    m.tuning = {"chosen_overrides": chosen, "chosen_trial": 1, "grid": "g.yaml", "trials": 1, "rule": "r"}
    RunStore(folder).write_manifest(m)
    return folder


@pytest.mark.parametrize("field", ["prompt.template", "model.trust_remote_code", "data.path",
                                   "output.results_dir"])
def test_tuned_from_applies_only_tunable_fields(tmp_path, field):
    """A received results folder whose tuning record sets a field no tune chooses: refused naming it, before the
    config is loaded with it (the payload template is never read)."""
    marker = tmp_path / "ran"
    evil = tmp_path / "received" / "colleague" / "manifest.json"
    value = {"prompt.template": evil, "model.trust_remote_code": "true", "data.path": "/etc",
             "output.results_dir": "/tmp"}[field]
    folder = _received_tuned_folder(tmp_path, ["train.learning_rate=0.001", f"{field}={value}"], payload(marker))
    assert payload(marker) in evil.read_text()
    before = tree_state(tmp_path / "received")
    line = one_line_exit_2(cli("run", CONFIG, "--tuned-from", folder, *sets(tiny_overrides(tmp_path))))
    assert field in line and "not tunable" in line
    assert not marker.exists() and not (tmp_path / "results").exists()
    assert tree_state(tmp_path / "received") == before


def test_tuned_from_with_only_tunable_fields_is_applied(tmp_path):
    from records.tuned import load_tuned
    folder = _received_tuned_folder(tmp_path, ["train.learning_rate=0.001"])
    cfg, tuned = load_tuned(str(CONFIG), tiny_overrides(tmp_path), str(folder), check_files=False)
    assert cfg.train.learning_rate == 0.001 and tuned["overrides"] == ["train.learning_rate=0.001"]


# --------------------------------------------------------------------------- tools/predict_with_adapter.py
@functools.lru_cache(maxsize=1)
def _tool():
    spec = importlib.util.spec_from_file_location("predict_with_adapter", ROOT / "tools/predict_with_adapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _adapter(tmp_path, template: str):
    """A received adapter folder: provenance.json with `template`, meta.json listing its files' checksums."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "provenance.json").write_text(json.dumps({"prompt": {"template": template, "label_words": ["a"],
                                                                   "max_length": 8}}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    files = {p.name: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
             for p in folder.iterdir()}
    (folder / "meta.json").write_text(json.dumps({"epoch": 1, "fingerprint": "f", "files": files}))
    return folder


def test_a_received_adapters_template_runs_no_code(tmp_path):
    """The issue's case: the template in a received adapter's provenance.json. The tool answers one line, exit 2,
    before it loads a model."""
    marker = tmp_path / "ran"
    folder = _adapter(tmp_path, payload(marker))
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"premise": "p", "hypothesis": "h"}\n')
    r = subprocess.run([sys.executable, str(ROOT / "tools/predict_with_adapter.py"), str(folder), str(rows),
                        "--device", "cpu"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    line = one_line_exit_2(r)
    assert "prompt.template" in line and "refused" in line and not marker.exists()
    tool = _tool()
    with pytest.raises(tool.Refused):
        tool.prompt_template("{{ premise.__class__ }}")
    assert tool.prompt_template(OWN).render(premise="a", hypothesis="b", labels=["x"]).startswith("Premise: a")


@pytest.mark.parametrize("change", ["edit", "extra", "missing", "link", "no-meta"])
def test_a_received_adapter_is_checked_against_its_checksums_before_loading(tmp_path, change):
    tool = _tool()
    folder = _adapter(tmp_path, OWN)
    tool.check_files(folder)  # as written: accepted
    weights = folder / "adapter_model.safetensors"
    if change == "edit":
        weights.write_bytes(b"WEIGHTS")
    elif change == "extra":
        (folder / "adapter_model.bin").write_bytes(b"pickle")
    elif change == "missing":
        weights.unlink()
    elif change == "link":
        shutil.copy(weights, tmp_path / "w")
        weights.unlink()
        weights.symlink_to(tmp_path / "w")
    else:
        (folder / "meta.json").unlink()
    with pytest.raises(tool.Refused) as e:
        tool.check_files(folder)
    assert "\n" not in str(e.value)
