"""The original study's figures: external reference data (analysis/original_study.yaml), not results of
this project. Everything the report compares with them labels them "original study"."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

ORIGINAL_FILE = Path(__file__).resolve().parent / "original_study.yaml"


@dataclass(frozen=True)
class Original:
    label: str
    source: str
    hardware: str
    model: str
    train_rows: int
    test_rows: int
    epochs: int
    accuracy_head: float          # pretrained model with an untrained classification head
    accuracy_finetuned: float
    finetune_seconds: float
    params_stored: int            # sum(p.numel()) on the 4-bit model with the LoRA adapters
    params_trainable: int
    gpu_memory_bytes: float       # as reported, in GB
    ram_bytes: float
    peak_cpu_pct: float
    disk_bytes: float
    failure_cases: str
    t4_total_bytes: float         # a T4's memory as NVML reports it (reference fact, not the study's)

    @property
    def model_id(self) -> str:
        return self.model.split(",")[0]

    @property
    def seconds_per_epoch(self) -> float:
        return self.finetune_seconds / self.epochs

    @property
    def gpu_figure_is_capacity(self) -> bool:
        """The reported GPU memory equals a T4's total memory to within rounding: a capacity, not a peak."""
        return abs(self.gpu_memory_bytes - self.t4_total_bytes) < 0.001 * self.t4_total_bytes

    def same_params(self, stored, trainable) -> bool:
        return stored == self.params_stored and trainable == self.params_trainable


def original_study(path: Path = ORIGINAL_FILE) -> Original:
    d = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    res = d["resources"]
    return Original(label=d["label"], source=" ".join(str(d["source"]).split()), hardware=d["hardware"],
                    model=d["model"], train_rows=d["train_rows"], test_rows=d["test_rows"], epochs=d["epochs"],
                    accuracy_head=d["accuracy"]["baseline_head"], accuracy_finetuned=d["accuracy"]["finetuned"],
                    finetune_seconds=d["finetune_seconds"], params_stored=d["params"]["stored_total"],
                    params_trainable=d["params"]["trainable"], gpu_memory_bytes=res["gpu_memory_bytes"],
                    ram_bytes=res["ram_bytes"], peak_cpu_pct=res["peak_cpu_pct"], disk_bytes=res["disk_bytes"],
                    failure_cases=d["failure_cases"], t4_total_bytes=d["t4"]["nvml_total_bytes"])
