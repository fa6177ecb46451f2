"""benchmarks/bench.py's ladder and records: the line it calls the default is what the default configs run, and
a record split over device calls is continued only by a call of the same config, GPU and measured code."""
import json

import pytest

import benchmarks.bench as bench
from records.config_reading import load_config


@pytest.mark.parametrize("config", ["configs/phi2-shape-h200.yaml", "configs/smollm2-snli-offline.yaml"])
def test_default_line_is_the_default_configs_train_settings(config):
    train = load_config(config, []).train
    changes = bench.DEFAULT_LINE[1]
    assert {k: getattr(train, k) for k in changes} == changes


def test_history_lines_predate_the_levers():
    # the lines that show how the default was reached must not pick the config's levers up
    for line in bench.LADDER:
        if line[2]["group"] == "history":
            assert {k: line[1][k] for k in ("attention", "length_buckets", "compile")} == \
                {"attention": "dense", "length_buckets": None, "compile": "off"}


def _record(**changes):
    return {"config": "configs/phi2-shape-h200.yaml", "overrides": [], "git_commit": "a" * 40, "gpu": "NVIDIA H200",
            "train_rows": 988, "libraries": {"torch": "2.11.0"}, "cuda": "13.0", "driver": "580", "created": "2026-12-04T12:00:00+00:00", "command": "python benchmarks/bench.py x",
            "results": [{"micro_batch": 8}], "wall_seconds": 500.0, **changes}


def test_append_continues_a_record_of_the_same_run(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record()))
    got = bench._continued(path, _record(created="2026-12-04T12:10:00+00:00", results=[]))
    assert got["results"] == [{"micro_batch": 8}]
    assert got["appended"] == [{"created": "2026-12-04T12:10:00+00:00", "command": "python benchmarks/bench.py x",
                                "git_commit": "a" * 40, "driver": "580"}]
    assert got["wall_seconds_before"] == 500.0


@pytest.mark.parametrize("key,value", [("git_commit", "b" * 40), ("gpu", "Tesla T4"), ("overrides", ["seed=1"]),
                                       ("libraries", {"torch": "2.12.0"}), ("cuda", "12.8")])
def test_append_refuses_another_run(tmp_path, key, value):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record()))
    with pytest.raises(SystemExit, match=f"--append .*its {key} is"):
        bench._continued(path, _record(**{key: value}))


def test_append_across_commits_follows_the_measured_code(tmp_path):
    # a later commit that changed no measured file continues the record; one that did is refused
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record(code_fingerprint="f" * 64)))
    got = bench._continued(path, _record(git_commit="b" * 40, code_fingerprint="f" * 64))
    assert got["appended"][-1]["git_commit"] == "b" * 40
    with pytest.raises(SystemExit, match="its code_fingerprint is"):
        bench._continued(path, _record(git_commit="b" * 40, code_fingerprint="e" * 64))


def test_append_compares_benchs_own_measuring_code_where_both_records_have_it(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_record(bench_fingerprint="1" * 64)))
    with pytest.raises(SystemExit, match="its bench_fingerprint is"):
        bench._continued(path, _record(bench_fingerprint="2" * 64))
    path.write_text(json.dumps(_record()))  # an older record without it: the other checks still hold
    assert bench._continued(path, _record(bench_fingerprint="2" * 64))["results"] == [{"micro_batch": 8}]
    assert bench.bench_fingerprint() == bench.bench_fingerprint() and len(bench.bench_fingerprint()) == 64


def test_measured_code_fingerprint_sees_pipeline_code_not_docs(tmp_path):
    for rel in ("pipeline/engine/loop.py", "records/x.py", "benchmarks/measure.py", "configs/a.yaml", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    before = bench.measured_code_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("changed\n")
    assert bench.measured_code_fingerprint(tmp_path) == before
    (tmp_path / "pipeline/engine/loop.py").write_text("x = 2\n")
    assert bench.measured_code_fingerprint(tmp_path) != before


def test_a_continued_record_takes_each_line_and_micro_batch_once():
    default, compiled = bench.LINES["default"], bench.LINES["compile"]
    record = {"results": [{"loop": "plain", "setting": "p", "micro_batch": 8, "dtype": "bfloat16"},
                          {"loop": "pipeline", "setting": default[0], "micro_batch": 8, "dtype": "bfloat16"},
                          {"loop": "pipeline", "setting": default[0] + ", float16", "micro_batch": 8,
                           "dtype": "float16"}]}
    assert bench.already_measured(record, [compiled], [8, 32], fp16=False) == []
    assert bench.already_measured(record, [default], [32], fp16=False) == []
    assert bench.already_measured(record, [default, compiled], [8], fp16=True) == \
        ["default at micro-batch 8", "the float16 line"]


def test_append_refuses_what_is_not_a_record(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read it as a bench record"):
        bench._continued(path, _record())


def test_targets_name_issue_19s_goals():
    row = {"loop": "pipeline", "setting": bench.DEFAULT, "dropout": "config", "dtype": "bfloat16"}
    record = {"results": [{**row, "micro_batch": 8, "tokens_per_s": 20000.0, "first_epoch_seconds": 6.0,
                           "seconds_per_epoch": 3.0, "peak_allocated_bytes": 3 * 2**30, "eval_seconds_200_rows": 0.2},
                          {**row, "micro_batch": 32, "tokens_per_s": 25000.0, "mfu": 0.2}],
              "loss_agreement": [{"setting": bench.DEFAULT, "max_relative_difference": 5e-3}]}
    got = {t["target"]: t for t in bench.targets(record)}
    assert got["tokens/s at micro-batch 8 (bfloat16)"]["met"] is True
    assert got["tokens/s at micro-batch 32 (bfloat16)"]["met"] is False
    assert got["micro-batch 32 tokens/s over micro-batch 8's"]["measured"] == 1.25
    assert got["5 epochs x 988 rows at micro-batch 8: training seconds (first epoch + 4 x warm)"]["measured"] == 18.0
    assert got["first epoch over a warm one at micro-batch 8"]["met"] is False
    assert got["peak allocated at micro-batch 8 (float16, capped)"]["met"] is None
    assert got["loss agreement with the plain loop: max relative difference"]["met"] is True


def test_the_printed_targets_say_which_way_each_goal_points():
    row = {"loop": "pipeline", "setting": bench.DEFAULT, "dropout": "config", "dtype": "bfloat16"}
    record = {"results": [{**row, "micro_batch": 8, "tokens_per_s": 9000.0, "seconds_per_epoch": 7.0,
                           "first_epoch_seconds": 14.0, "peak_allocated_bytes": 3 * 2**30},
                          {**row, "micro_batch": 32, "tokens_per_s": 12000.0, "seconds_per_epoch": 5.0, "mfu": 0.17}]}
    record["targets"] = bench.targets(record)
    printed = bench.table(record)
    assert "Target: MFU at micro-batch 32 (bfloat16) >= 0.25" in printed
    assert "Target: micro-batch 32 tokens/s over micro-batch 8's >= 1.5" in printed
    assert "Target: peak allocated at micro-batch 8 (bfloat16) <= 4" in printed
    assert "Target: first epoch over a warm one at micro-batch 8 <= 1.5" in printed
    # a record written before targets named their direction reads it from how the miss was written
    old = [{k: v for k, v in t.items() if k != "better"} for t in record["targets"]]
    assert bench.table({"results": [], "targets": old}) == bench.table({"results": [], "targets": record["targets"]})


@pytest.mark.parametrize("text", ["", "8,x", "0,8", "8,8", "-2"])
def test_micro_batch_sizes_refuse_what_is_not_a_list_of_sizes(text):
    with pytest.raises(SystemExit, match="--micro-batches: .* positive whole numbers"):
        bench.micro_batch_sizes(text)


def test_micro_batch_sizes_keep_the_order_asked():
    assert bench.micro_batch_sizes("32,8") == [32, 8]
