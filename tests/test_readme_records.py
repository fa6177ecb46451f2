"""README.md's performance and scaling sections are generated from the committed benchmark records
(benchmarks/readme.py): a figure typed by hand, or a record committed without regenerating, fails here."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_sections_match_the_latest_records():
    r = subprocess.run([sys.executable, "benchmarks/readme.py", "--check"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr


def test_a_changed_figure_is_caught_and_rewritten(tmp_path):
    sys.path.insert(0, str(ROOT))
    import benchmarks.readme as readme
    text = (ROOT / "README.md").read_text()
    start, end = readme.MARKERS["scaling"]
    body = text.split(start, 1)[1].split(end, 1)[0]
    assert "x |" in body  # the scaling table is there
    fake = tmp_path / "README.md"
    fake.write_text(text.replace(body, body.replace("x |", "x (typed) |", 1)))
    assert readme.main(["--check"], fake) == 1
    assert readme.main([], fake) == 0
    assert fake.read_text() == text


def test_the_latest_scaling_record_is_what_its_command_computes_from_the_committed_runs():
    """The scaling figures trace to the committed results folders: recomputed, they equal the record's."""
    import json
    sys.path.insert(0, str(ROOT))
    from benchmarks.readme import latest_scaling
    from benchmarks.scaling import compare
    path, record = latest_scaling()
    folders = [ROOT / f for f in record["command"].split()[2:]]
    if not all((f / "manifest.json").is_file() for f in folders):
        import pytest
        pytest.skip(f"{path.name} was made from results folders not committed")
    pairs = [compare(folders[i], folders[i + 1]) for i in range(0, len(folders), 2)]
    # what the record's writer writes: JSON has no NaN, a missing figure is null
    from records.manifest import finite
    assert json.loads(json.dumps(finite(pairs))) == record["pairs"]


def test_a_record_continued_over_calls_shows_its_rows_in_ladder_order():
    # a split ladder appends its rows in the order the calls measured them; the table is by micro-batch, plain
    # loop first, then the ladder's order, float16 last
    sys.path.insert(0, str(ROOT))
    import benchmarks.readme as readme
    from benchmarks.bench import LINES
    row = {"loop": "pipeline", "dtype": "bfloat16", "tokens_per_s": 1.0, "seconds_per_epoch": 1.0}
    measured = [{**row, "setting": LINES["default"][0], "micro_batch": 8},
                {**row, "setting": LINES["default"][0] + ", float16 under a 15 GiB cap", "micro_batch": 8,
                 "dtype": "float16"},
                {**row, "setting": LINES["default"][0], "micro_batch": 32},
                {**row, "setting": LINES["eager"][0], "micro_batch": 8},
                {**row, "loop": "plain", "setting": "peft docs", "micro_batch": 8}]
    table = readme._ladder({"results": measured})[2:]
    settings = [line.split(" | ")[1] + " @" + line.split(" | ")[2] for line in table]
    assert settings == ["peft docs @8", LINES["eager"][0] + " @8", LINES["default"][0] + " @8",
                        LINES["default"][0] + ", float16 under a 15 GiB cap @8", LINES["default"][0] + " @32"]


def test_the_scale_table_takes_the_newest_record_of_each_size_and_measure():
    sys.path.insert(0, str(ROOT))
    import benchmarks.readme as readme
    folder = ROOT / "benchmarks" / "results"

    def record(created, runs, **extra):
        return {"created": created, "machine": {"cpus": 2}, "config": "configs/tiny-cpu.yaml", "runs": runs, **extra}
    old = record("2026-01-01T00:00:00+00:00", [{"rows_asked": 550152, "rows_from": "r", "peak_rss_bytes": 7 * 2**30,
                                                 "seconds_to_step": {"step": 1, "seconds": 324.1}}])
    new = record("2026-02-01T00:00:00+00:00", [{"rows_asked": 550152, "rows_from": "r", "peak_rss_bytes": 2**30,
                                                 "seconds_to_step": {"step": 1, "seconds": 48.4}},
                                                {"rows_asked": 1000, "rows_from": "r", "peak_rss_bytes": 2**29,
                                                 "rows_per_s": 300.0}],
                 code_version={"git_commit": "abcdef0" + "0" * 33})
    failed = record("2026-03-01T00:00:00+00:00", [{"rows_asked": 1000, "rows_from": "r", "peak_rss_bytes": 1,
                                                    "exit": 1, "log_tail": "boom"}])
    cpu = [(folder / "scale-new.json", new), (folder / "scale-failed.json", failed), (folder / "scale-old.json", old)]
    body = readme.scale_section(cpu, None)  # given newest first: the section orders them by time itself
    assert "| 550,152 | – | – | 48.4 s | 1.00 GiB | [scale-new.json](benchmarks/results/scale-new.json) " \
           "(code `abcdef0`) |" in body  # each figure names the commit that measured it
    assert "(code not recorded)" not in body  # the old record, which lacks it, is not shown
    unrecorded = record("2026-04-01T00:00:00+00:00", [{"rows_asked": 10000, "rows_from": "r", "peak_rss_bytes": 2**29,
                                                        "rows_per_s": 290.0}])
    changed = record("2026-05-01T00:00:00+00:00", [{"rows_asked": 20000, "rows_from": "r", "peak_rss_bytes": 2**29,
                                                     "rows_per_s": 280.0}],
                     code_version={"git_commit": "1111111" + "0" * 33, "dirty": False},
                     code_version_at_end={"git_commit": "2222222" + "0" * 33, "dirty": False})
    other = readme.scale_section([(folder / "scale-u.json", unrecorded), (folder / "scale-c.json", changed)], None)
    assert "[scale-u.json](benchmarks/results/scale-u.json) (code not recorded) |" in other
    assert "(code `1111111`, changed to `2222222` during the runs) |" in other
    assert "324.1" not in body
    assert "| 1,000 | 300 | 0.50 GiB | – | – |" in body  # the later failed run measured nothing
    assert readme.scale_section([], None) == ""


def test_a_lever_is_called_shorter_for_the_run_lengths_where_it_is():
    sys.path.insert(0, str(ROOT))
    from benchmarks.readme import _shorter_for
    base = {"first_epoch_seconds": 14.0, "seconds_per_epoch": 6.5}
    # compile-like: first epoch 46.7 s, then 4.17 s: 46.7 + 4.17 (n-1) < 14 + 6.5 (n-1) from n-1 > 14.03, n = 16
    assert _shorter_for({"first_epoch_seconds": 46.7, "seconds_per_epoch": 4.17}, base) == "from 16 epochs"
    # padded-like: quicker first epoch, slower warm: 12 + 7.1 (n-1) < 14 + 6.5 (n-1) while n-1 < 3.33, n <= 4
    assert _shorter_for({"first_epoch_seconds": 12.0, "seconds_per_epoch": 7.1}, base) == "up to 4 epochs"
    assert _shorter_for({"first_epoch_seconds": 9.0, "seconds_per_epoch": 5.0}, base) == "from the first epoch"
    assert _shorter_for({"first_epoch_seconds": 20.0, "seconds_per_epoch": 7.0}, base) == "never"


def test_the_scaling_script_writes_a_whole_record_that_readme_reads(tmp_path, monkeypatch, capsys):
    import json
    sys.path.insert(0, str(ROOT))
    import benchmarks.scaling as scaling
    from benchmarks.readme import latest_scaling
    _, committed = latest_scaling()
    folders = [str(ROOT / f) for f in committed["command"].split()[2:]]
    if not all((Path(f) / "manifest.json").is_file() for f in folders):
        import pytest
        pytest.skip("the latest scaling record was made from results folders not committed")
    monkeypatch.setattr(scaling, "ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert scaling.main(folders) == 0
    written = list((tmp_path / "benchmarks" / "results").iterdir())
    assert len(written) == 1 and written[0].name.startswith("scaling-")  # no temporary file left beside it
    record = json.loads(written[0].read_text())
    assert record["pairs"] == committed["pairs"]
    assert scaling.table(record) in capsys.readouterr().out
