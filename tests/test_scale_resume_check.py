"""benchmarks/scale.py --resume-check, the GPU scale run's driver (issue 20), on CPU with the tiny model: a run
killed mid-epoch is resumed from its mid-epoch checkpoint, and the record says so from the run's own tables."""
import json
import re
from pathlib import Path

import benchmarks.scale as scale

ROOT = Path(__file__).resolve().parent.parent


def test_a_killed_run_resumes_and_the_record_says_from_where(tmp_path):
    text = (ROOT / "configs" / "tiny-cpu.yaml").read_text()
    text = re.sub(r"(?m)^run: tiny-cpu$", "run: tiny-resume", text)
    text = re.sub(r"(?m)^  epochs: 3$", "  epochs: 1\n  checkpoint_every_steps: 2", text)
    assert "checkpoint_every_steps: 2" in text and "run: tiny-resume" in text
    config = tmp_path / "tiny-resume.yaml"
    config.write_text(text)
    out = tmp_path / "out"
    code = scale.main(["--resume-check", str(config), "--kill-after-step", "3", "--work", str(tmp_path / "work"),
                       "--out", str(out)])
    assert code == 0
    [path] = out.glob("scale-gpu-*.json")
    record = json.loads(path.read_text())
    first, second = record["attempts"]
    assert first["exit"] != 0 and first["resumed"] == []
    assert second["exit"] == 0
    assert second["resumed"] and "step 2/" in second["resumed"][0]  # the last checkpoint before the kill
    assert record["optimizer_steps"] == len(record["epochs"]) * 20 == 20  # 309 rows / 16 per step, one epoch
    assert set(record["resource_samples_by_attempt"]) == {"1", "2"}  # the killed attempt's samples were kept
    assert 0 <= record["test_accuracy"]["finetuned"] <= 1
