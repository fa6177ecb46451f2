"""Parameters: the params table by component, stored against logical counts, and every run's totals."""
from __future__ import annotations

import math

import pandas as pd

from analysis import fmt
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown
from analysis.tables import bold, table

HEAD = r"score|head|classifier"


def precision(dtype: str) -> str:
    """How a component is stored, in bits: "4-bit NF4", "16-bit", "32-bit", or the dtype as written."""
    d = str(dtype).lower()
    for key, words in (("nf4", "4-bit NF4"), ("fp4", "4-bit FP4"), ("16", "16-bit"), ("32", "32-bit"), ("int8", "8-bit")):
        if key in d:
            return words
    return str(dtype)


def component_labels(t: pd.DataFrame) -> list[str]:
    """Component names, with the precision added where a name occurs more than once (the transformer body's
    4-bit weights and its 16-bit norms and biases are two rows of the table)."""
    repeated = t["component"].duplicated(keep=False)
    return [f"{c} ({precision(d)})" if rep else str(c) for c, d, rep in zip(t["component"], t["dtype"], repeated, strict=True)]


def component_table(f: RunFacts) -> Markdown:
    t = f.run.table("params")
    if t is None or not len(t):
        return Markdown("")
    rows = [[label, fmt.integer(r.stored_elements), fmt.integer(r.logical_params), fmt.integer(r.trainable),
             fmt.integer(r.bytes), r.dtype] for label, r in zip(component_labels(t), t.itertuples(), strict=True)]
    p = f.params
    rows.append([bold("total"), bold(fmt.integer(p.stored)), bold(fmt.integer(p.logical)), bold(fmt.integer(p.trainable)),
                 bold(fmt.integer(p.bytes)), ""])
    return table(["component", "stored elements", "logical parameters", "trainable", "bytes", "dtype"], rows,
                 align="lrrrrl", widths=[30, 14, 14, 12, 14, 12])


def quantization_gap(f: RunFacts) -> float:
    """How many fewer elements are stored than there are logical parameters (4-bit packing)."""
    return f.params.logical - f.params.stored


def head_rows(f: RunFacts) -> tuple[str, float]:
    """The classification head's rows of the params table (frozen original and trainable copy) and their elements."""
    t = f.run.table("params")
    if t is None or not len(t):
        return "", math.nan
    heads = t[t["component"].str.contains(HEAD, case=False)]
    return fmt.and_list(heads["component"]), float(heads["stored_elements"].sum())


def runs_table(R: ReportFacts) -> Markdown:
    o, rows = R.original, []
    for f in R.runs:
        p = f.params
        if not p.measured:
            rows.append([f.name, "not available", "not available", "not available", "—"])
            continue
        same = "yes, exactly" if o.same_params(p.stored, p.trainable) else "no (a different model)"
        rows.append([f.name, fmt.integer(p.stored), fmt.integer(p.logical), fmt.integer(p.trainable), same])
    rows.append([f"{o.label} (reference)", fmt.integer(o.params_stored), "not reported", fmt.integer(o.params_trainable), "—"])
    return table(["run", "stored elements", "logical parameters", "trainable", "same as the original study"], rows,
                 align="lrrrl")
