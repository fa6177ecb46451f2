"""Never follow links where we write (issue 18): a symbolic link planted in a results or checkpoint folder (git
commits links, so a received folder can hold one) is refused with one line naming it, the file it points at
unchanged; `verify` reports any link in a run folder."""
from __future__ import annotations

import pytest

from pipeline.cli import main
from records.errors import LinkRefused
from records.store import atomic_write_bytes
from tests.conftest import sets
from tests.pipeline.reliability import CONFIG, copy_run, folder, overrides, tree_state


def _victim(tmp_path):
    """A file of someone else's that a link is aimed at (the issue's case: README.md)."""
    victim = tmp_path / "elsewhere" / "README.md"
    victim.parent.mkdir()
    victim.write_text("precious\n")
    return victim


def _one_refusal(capsys, argv, named) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(named) in err[0] and "symbolic link" in err[0], err


@pytest.mark.parametrize("where", [".lock", "epochs.parquet", "manifest.json", "results folder",
                                   "checkpoint folder", "epoch_1", "final/adapter_model.safetensors"])
def test_a_planted_link_is_refused_naming_it(small_reference, tmp_path, capsys, where):
    work = copy_run(small_reference.complete, tmp_path / "work")
    victim = _victim(tmp_path)
    ckpt = work / "checkpoints" / "small"
    link = {".lock": folder(work) / ".lock", "epochs.parquet": folder(work) / "epochs.parquet",
            "manifest.json": folder(work) / "manifest.json", "results folder": folder(work),
            "checkpoint folder": ckpt, "epoch_1": ckpt / "epoch_1",
            "final/adapter_model.safetensors": ckpt / "final" / "adapter_model.safetensors"}[where]
    target = victim if "folder" not in where and where != "epoch_1" else victim.parent
    if link.is_dir():
        import shutil
        shutil.rmtree(link)
    else:
        link.unlink(missing_ok=True)
    link.symlink_to(target)
    before, outside = tree_state(work), tree_state(victim.parent)
    for argv in (["run", CONFIG], ["run", CONFIG, "--restart"], ["run", CONFIG, "--stages", "evaluate"]):
        _one_refusal(capsys, [*argv, *sets(overrides(work))], link)
    assert tree_state(work) == before and tree_state(victim.parent) == outside
    assert victim.read_text() == "precious\n"


def test_atomic_writes_never_go_through_a_link(tmp_path):
    """The store's one write path (tables, manifest, exports) checks the file and its folder with lstat."""
    victim = _victim(tmp_path)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "t.parquet").symlink_to(victim)
    (tmp_path / "linked").symlink_to(victim.parent)
    for path in (tmp_path / "run" / "t.parquet", tmp_path / "linked" / "x.json"):
        with pytest.raises(LinkRefused, match="symbolic link"):
            atomic_write_bytes(path, b"overwritten")
    assert victim.read_text() == "precious\n" and sorted(p.name for p in victim.parent.iterdir()) == ["README.md"]


def test_verify_reports_any_link_in_a_run_folder(small_reference, tmp_path):
    from records.verify import problems
    work = copy_run(small_reference.complete, tmp_path / "work")
    assert not any("symbolic link" in line for line in problems(folder(work)))
    (folder(work) / "notes").mkdir()
    (folder(work) / "notes" / "x.parquet").symlink_to(_victim(tmp_path))
    (folder(work) / "steps.parquet").unlink()
    (folder(work) / "steps.parquet").symlink_to(folder(work) / "epochs.parquet")
    found = [line for line in problems(folder(work)) if "symbolic link" in line]
    assert len(found) == 2 and "notes/x.parquet" in found[0] + found[1] and "steps.parquet" in found[0] + found[1]
