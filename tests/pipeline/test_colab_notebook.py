"""notebooks/colab_t4.ipynb runs (issue 24): executed on CPU with the tiny config by setting its parameters cell, as
papermill would, so the notebook a T4 user opens cannot rot. Its clone and install cells are no-ops here
(ALREADY_HERE); every other cell runs: the GPU check, the study, the render, the outputs."""
from __future__ import annotations

import json

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "colab_t4.ipynb"


def _parameters(nb) -> nbformat.NotebookNode:
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return cell


def test_the_notebook_keeps_its_parameters_in_one_tagged_cell_at_the_top():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0] is _parameters(nb)
    assert all(len(c.source.splitlines()) <= 15 for c in code), "short cells"
    assert "ALREADY_HERE" in code[0].source and "REPO_URL" in code[0].source


@pytest.mark.slow
def test_the_notebook_runs_the_tiny_study_and_renders_it(tmp_path):
    from nbclient import NotebookClient

    from analysis.render.kernel import _kernel_manager
    nb = nbformat.read(NOTEBOOK, as_version=4)
    given = {"REPO_DIR": str(ROOT), "ALREADY_HERE": True, "CONFIG": "configs/tiny-cpu.yaml",
             "EXTRA_SETS": ["run=colab-tiny", "train.epochs=1", "data.validation.limit=8", "data.test.limit=8"],
             "RESULTS_DIR": str(tmp_path / "results"), "CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
             "SITE_DIR": str(tmp_path / "site"), "FORMATS": "html"}
    cell = _parameters(nb)
    cell.source += "\n# set by the test\n" + "\n".join(f"{k} = {json.dumps(v) if not isinstance(v, bool) else v}"
                                                      for k, v in given.items())
    NotebookClient(nb, km=_kernel_manager(str(tmp_path)), kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "no GPU: the pipeline runs on CPU in float32" in text
    assert "$ " in text and " -m pipeline run configs/tiny-cpu.yaml" in text
    assert (tmp_path / "results" / "colab-tiny" / "manifest.json").is_file()
    assert (tmp_path / "site" / "report.html").is_file() and "report.html" in text
    assert "epochs.parquet" in text and "open" in text  # where the outputs are
