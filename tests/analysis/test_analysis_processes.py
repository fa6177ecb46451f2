"""Runs over several GPUs in the report: the one-GPU run of the same work is found by config and data, the
effective batch is stated as micro x GPUs x accumulation, scaling and per-GPU figures come from the tables."""
import re

from analysis import figures, sections
from analysis.figures import PNG
from tests.report_fixture import edit_manifest, write_two_gpu_twin


def test_a_two_gpu_run_is_set_beside_the_one_gpu_run_of_the_same_work(results, facts):
    write_two_gpu_twin(results, "fixture-gpu", "fixture-gpu-x2", speedup=1.6)
    R = facts("fixture-gpu,fixture-gpu-x2,fixture-shape")
    multi = R.multi_process
    assert [f.name for f in multi] == ["fixture-gpu-x2"]
    assert R.one_process_twin(multi[0]).name == "fixture-gpu"

    md = sections.resources.scaling_table(R)
    row = next(line for line in md.splitlines() if line.startswith("| fixture-gpu-x2"))
    assert "8 = 4 x 2 x 1" in row
    assert "1.60x" in row and "80 %" in row  # speed-up 1.6 on 2 GPUs: 80 % efficiency
    acc = f"{R.headline.acc('finetuned').value:.1%}".replace("%", " %")
    assert row.count(acc) == 2, row  # same predictions copied: the accuracies agree

    per_gpu = sections.resources.per_gpu_table(R)
    ranks = re.findall(r"^\| (fixture-gpu(?:-x2)?) \| (\d) \| (\d)", per_gpu, re.M)
    assert ranks == [("fixture-gpu-x2", "0", "0"), ("fixture-gpu-x2", "1", "1"), ("fixture-gpu", "0", "0")]
    assert isinstance(figures.per_gpu_timelines(multi), PNG)

    # the re-run commands: a 2-process run recorded without its launcher gets it back, and says so
    block = sections.reproducibility.commands(R)
    assert "# fixture-gpu-x2 (over 2 processes: the launcher is added" in block
    assert "\naccelerate launch --multi_gpu --num_processes 2 -m pipeline run configs/fixture-gpu.yaml" in block
    assert "\npython -m pipeline run configs/fixture-gpu.yaml" in block  # the one-GPU run as recorded
    assert figures.per_gpu_timelines([R.headline]) is None  # one process: no per-GPU figure


def test_a_run_that_did_different_work_is_not_its_twin(results, facts):
    write_two_gpu_twin(results, "fixture-gpu", "fixture-gpu-x2-lr")
    edit_manifest(results / "fixture-gpu-x2-lr",
                  lambda m: m.config["train"].update(learning_rate=m.config["train"]["learning_rate"] * 2))
    R = facts("fixture-gpu,fixture-gpu-x2-lr")
    assert R.one_process_twin(R.multi_process[0]) is None
    row = next(line for line in sections.resources.scaling_table(R).splitlines() if "x2-lr" in line)
    assert "none in this report" in row and "not reported" not in row.split("|")[3]


def test_no_multi_gpu_runs_no_section(facts):
    R = facts("fixture-gpu,fixture-shape,fixture-cpu")
    assert R.multi_process == []


def test_a_near_twin_is_paired_and_its_differences_named(results, facts):
    # the twin ran with length buckets, by other code, on another GPU: set beside the one-GPU run, not called like
    # for like. A setting the one-GPU run's (older) config lacks counts as the default older code ran, and how often
    # a run saves never counts.
    write_two_gpu_twin(results, "fixture-gpu", "fixture-gpu-x2-nb", speedup=1.5)
    assert "compile" not in R_config(results, "fixture-gpu") and "checkpoint_every_minutes" not in \
        R_config(results, "fixture-gpu")

    def other(m):
        m.config["train"].update(length_buckets=4, compile="off", checkpoint_every_minutes=5.0)
        m.code_version = {**(m.code_version or {}), "git_commit": "5bdfe60" + "0" * 33}
        m.environment = {**(m.environment or {}), "gpu": {"name": "NVIDIA H100"}}
    edit_manifest(results / "fixture-gpu-x2-nb", other)
    R = facts("fixture-gpu,fixture-gpu-x2-nb")
    twin = R.multi_process[0]
    assert R.one_process_twin(twin).name == "fixture-gpu"
    apart = R.twin_differences(twin)
    assert apart[0] == "train.length_buckets 4 / null" and apart[1].startswith("code 5bdfe60 / ")
    assert apart[2].startswith("GPU NVIDIA H100 / ") and len(apart) == 3
    row = next(line for line in sections.resources.scaling_table(R).splitlines() if "x2-nb" in line)
    assert r"no: train.length\_buckets 4 / null; code 5bdfe60 / " in row and "1.50x" in row


def test_a_setting_older_code_lacked_that_is_not_a_runner_setting_keeps_runs_apart(results, facts):
    from analysis import processes
    write_two_gpu_twin(results, "fixture-gpu", "fixture-gpu-x2-extra")
    edit_manifest(results / "fixture-gpu-x2-extra", lambda m: m.config["train"].update(new_knob=1))
    R = facts("fixture-gpu,fixture-gpu-x2-extra")
    twin = R.multi_process[0]
    one = next(f for f in R.runs if f.name == "fixture-gpu")
    assert processes.differences(twin.run, one.run) == {"train.new_knob": (1, processes.ABSENT)}
    assert R.one_process_twin(twin) is None


def R_config(results, run) -> dict:
    import json
    return json.loads((results / run / "manifest.json").read_text())["config"]["train"]


def test_a_like_for_like_twin_says_so(results, facts):
    write_two_gpu_twin(results, "fixture-gpu", "fixture-gpu-x2-same", speedup=1.6)
    R = facts("fixture-gpu,fixture-gpu-x2-same")
    assert R.twin_differences(R.multi_process[0]) == []
    row = next(line for line in sections.resources.scaling_table(R).splitlines() if "x2-same" in line)
    assert row.split("|")[5].strip() == "yes"


def test_the_all_runs_table_names_the_commit_that_made_each_run(results, facts):
    edit_manifest(results / "fixture-gpu", lambda m: setattr(m, "code_version", {"git_commit": "abc1234" + "0" * 33}))
    R = facts("fixture-gpu,fixture-shape")
    row = next(line for line in sections.runs.comparison_table(R).splitlines() if line.startswith("| made by"))
    assert "code abc1234, 20" in row  # commit and the day its last stage ended
