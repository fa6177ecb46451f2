"""Recover results/<run>/tuning.parquet from the printed output of a `pipeline tune` run.

Why this exists: on the lent GPU machine the working tree is laid anew before every call, which wiped
results/smollm2-snli-offline/tuning.parquet between the tune call and the packing of results (see
docs/device-logs/2-smollm2-tune.log). Re-running the 8 trials would have cost 9 of the session's 30
GPU minutes, so the table is rebuilt from the table that `tune` printed (values rounded to 6 decimals
as printed) and written through the results store, with its provenance in the manifest.

Run: python tools/tuning_from_log.py docs/device-logs/2-smollm2-tune.log configs/smollm2-snli-offline.yaml
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pandas as pd  # noqa: E402

from pipeline.tune import read_grid, record  # noqa: E402
from records.config_reading import load_config  # noqa: E402
from records.store import RunStore  # noqa: E402

ROW = re.compile(r"^\s+(\d+)\s+([\d.e-]+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(True|False)$")


def main(log_path: str, config_path: str, grid_path: str = "configs/smollm2-tuning.yaml") -> None:
    text = Path(log_path).read_text()
    rows = []
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            g = m.groups()
            rows.append({"trial": int(g[0]), "learning_rate": float(g[1]), "batch_size": int(g[2]),
                         "lora_r": int(g[3]), "target_modules": g[4], "epochs": int(g[5]),
                         "val_accuracy": float(g[6]), "val_loss": float(g[7]), "seconds": float(g[8]),
                         "chosen": g[9] == "True"})
    epochs, trials = read_grid(Path(grid_path))
    if len(rows) != len(trials):
        print(f"error: {log_path}: found {len(rows)} trial rows, the grid has {len(trials)}", file=sys.stderr)
        sys.exit(2)
    df = pd.DataFrame(rows)
    cfg = load_config(config_path)
    record(RunStore(cfg.results_path), df, config_path, grid_path, epochs, trials,
           source=f"rebuilt from the printed table in {log_path} (tools/tuning_from_log.py); "
                  "the tune run's own tuning.parquet was lost on the GPU machine before packing")
    print(df.to_string(index=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
