"""The command line: one exit code (2) and one line for every kind of bad input, nothing written."""
import pytest

from pipeline.cli import parse_stages
from records.errors import ConfigError
from tests.conftest import cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"


def test_stages_are_parsed_in_the_graphs_names():
    assert parse_stages(None) is None  # not given: all
    assert parse_stages("train, data") == ["train", "data"]  # the runner orders them
    with pytest.raises(ConfigError, match=r"^--stages: empty \(choose from data, params, baseline, train, evaluate"):
        parse_stages(" , ")


@pytest.mark.parametrize("args,line", [
    (["--stages", ""], "error: --stages: empty (choose from data, params, baseline, train, evaluate, or leave "
                       "--stages out for all)"),
    (["--stages", ","], "error: --stages: empty (choose from data, params, baseline, train, evaluate, or leave "
                        "--stages out for all)"),
    (["--stages", "data,trian"], "error: --stages: unknown stage 'trian' (choose from data, params, baseline, train, "
                                 "evaluate)"),
    (["--set", "train.epochs=0"], f"error: {CONFIG}: train.epochs: must be >= 1, got 0"),
    (["--set", "model.shape.num_attention_heads=.nan"],
     f"error: {CONFIG}: model.shape.num_attention_heads: must be a finite number, got nan"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, line):
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path)), *args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [line]
    assert list(tmp_path.iterdir()) == []


def test_a_bad_command_line_is_exit_2_too():
    assert cli("fly", CONFIG).returncode == 2
    assert cli("run").returncode == 2  # no config
    assert cli("run", CONFIG, "--restrat").returncode == 2
