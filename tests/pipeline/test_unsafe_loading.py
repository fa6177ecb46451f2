"""Nothing from disk runs as code: a planted state.pt (a pickle that would run a command) is refused with one
line and the command never runs; transformers never runs code shipped with a model unless the config asks."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from pipeline.cli import main
from records.errors import ConfigError
from records.integrity import checkpoint_files
from tests.conftest import ROOT, sets
from tests.pipeline.reliability import (
    CONFIG,
    SimulatedKill,
    config,
    copy_run,
    folder,
    killed_at,
    overrides,
    run,
)


class _Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(state_pt, marker) -> None:
    torch.save({"optimizer": _Payload(marker)}, state_pt)


def test_the_planted_file_would_run_code_if_loaded_unsafely(tmp_path):
    """The payload is real: loaded the old way (weights_only=False) it runs its command."""
    _plant(tmp_path / "state.pt", tmp_path / "ran")
    code = f"import torch; torch.load({str(tmp_path / 'state.pt')!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    assert (tmp_path / "ran").exists()


@pytest.fixture
def killed_after_epoch_one(small_reference, tmp_path):
    """A train stage killed before its second epoch's checkpoint: the next run resumes from epoch 1's state.pt."""
    work = copy_run(small_reference.before["train"], tmp_path / "work")
    with killed_at("train:epoch_2:1"), pytest.raises(SimulatedKill):
        run(work, ["train"])
    return work, work / "checkpoints" / "small" / "epoch_1"


def test_a_planted_state_pt_with_a_matching_checksum_is_refused(killed_after_epoch_one, tmp_path, capsys):
    """An attacker who rewrote meta.json too gets past the checksum; torch.load(weights_only=True) refuses the
    pickle, the run stops with one line naming the file, and the command never ran."""
    work, epoch = killed_after_epoch_one
    marker = tmp_path / "ran"
    _plant(epoch / "state.pt", marker)
    meta = json.loads((epoch / "meta.json").read_text())
    meta["files"] = checkpoint_files(epoch)
    (epoch / "meta.json").write_text(json.dumps(meta))
    capsys.readouterr()
    assert main(["run", CONFIG, *sets(overrides(work)), "--stages", "train"]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's loading bar, one line
    assert line.startswith(f"error: {epoch / 'state.pt'}: refused to load: not a plain checkpoint state "
                           f"(UnpicklingError: "), line
    assert line.endswith(f"(fix: delete {epoch} to resume from the epoch before, or run with --restart)"), line
    assert not marker.exists()


def test_a_planted_state_pt_that_fails_its_checksum_is_passed_over(killed_after_epoch_one, small_reference, tmp_path,
                                                                   capsys):
    """Without the matching checksum the folder is damaged: never loaded, training starts over, same results."""
    from tests.pipeline.reliability import assert_same_results
    work, epoch = killed_after_epoch_one
    marker = tmp_path / "ran"
    _plant(epoch / "state.pt", marker)
    capsys.readouterr()
    run(work, ["train"])
    out = capsys.readouterr().out
    assert f"note: the checkpoint of epoch 1 is damaged ({epoch / 'state.pt'} " in out
    assert "Resuming" not in out and not marker.exists()
    assert_same_results(small_reference.after["train"], work)


def test_remote_code_stays_off_unless_the_config_asks(tmp_path, monkeypatch):
    """Every from_pretrained the pipeline makes (config, model, tokenizer) passes trust_remote_code=False by
    default, True only with model.trust_remote_code: true."""
    import transformers

    from pipeline.model import loading as model_mod
    from pipeline.model import tokenizer as tokenizer_mod
    calls = []

    def recorder(kind):
        def from_pretrained(*a, **k):
            calls.append((kind, k.get("trust_remote_code", "not passed")))
            raise OSError("stop here")  # the call's arguments are what this test is about
        return from_pretrained

    for cls in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM", "AutoModelForSequenceClassification"):
        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", recorder(cls))
    for asked in (False, True):
        calls.clear()
        cfg = config(tmp_path, "model.source=local", f"model.name={tmp_path}", "model.architecture=null",
                     "model.shape={}", "tokenizer.source=local", f"tokenizer.name={tmp_path}",
                     *(["model.trust_remote_code=true"] if asked else []))
        for call, args in ((model_mod._model_config, ()), (tokenizer_mod.load_tokenizer, ()),
                           (model_mod.load_causal_lm, (torch.device("cpu"), torch.float32))):
            with pytest.raises(ConfigError, match="could not load"):  # our recorder's OSError, as one line
                call(cfg, str(tmp_path), *args)
        assert {kind for kind, _ in calls} == {"AutoConfig", "AutoTokenizer"}, calls
        assert all(flag is asked for _, flag in calls), calls
        assert model_mod._load_kwargs(cfg, torch.device("cpu"), torch.float32)["trust_remote_code"] is asked
    assert folder(tmp_path).exists() is False
