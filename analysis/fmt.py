"""Formatting of numbers (and lists of words) for the report. Missing values are said in words, never shown as 0."""
from __future__ import annotations

import math

NOT_MEASURED = "not measured"
GIB = 2 ** 30
GB = 10 ** 9


def missing(x) -> bool:
    if x is None:
        return True
    try:
        return bool(math.isnan(x))
    except TypeError:
        return False


def integer(x, none: str = NOT_MEASURED) -> str:
    return none if missing(x) else f"{int(round(x)):,}"


def num(x, digits: int = 2, none: str = NOT_MEASURED) -> str:
    return none if missing(x) else f"{x:,.{digits}f}"


def general(x, none: str = NOT_MEASURED) -> str:
    """Shortest form, e.g. a learning rate: 0.001, 2e-05."""
    return none if missing(x) else f"{x:g}"


def pct(x, digits: int = 1, none: str = NOT_MEASURED) -> str:
    """A fraction 0..1 as a percentage."""
    return none if missing(x) else f"{100 * x:.{digits}f} %"


def pct_value(x, digits: int = 0, none: str = NOT_MEASURED) -> str:
    """A value that already is a percentage (0..100)."""
    return none if missing(x) else f"{x:.{digits}f} %"


def gib(x, digits: int = 2, none: str = NOT_MEASURED) -> str:
    return none if missing(x) else f"{x / GIB:,.{digits}f} GiB"


def gb(x, digits: int = 3, none: str = NOT_MEASURED) -> str:
    return none if missing(x) else f"{x / GB:,.{digits}f} GB"


def mem(x, none: str = NOT_MEASURED) -> str:
    """Bytes in GiB with the decimal GB beside it (the original study reports GB)."""
    return none if missing(x) else f"{x / GIB:,.2f} GiB ({x / GB:,.2f} GB)"


def size(x, none: str = NOT_MEASURED) -> str:
    """Bytes on disk in GiB, or in MiB below one GiB (a tiny run's few hundred KiB would read as 0.00 GiB)."""
    if missing(x):
        return none
    return f"{x / GIB:,.2f} GiB" if x >= GIB else f"{x / 2 ** 20:,.2f} MiB"


def seconds(x, none: str = NOT_MEASURED) -> str:
    if missing(x):
        return none
    if x < 10:
        return f"{x:.2f} s"
    if x < 120:
        return f"{x:.1f} s"
    return f"{x:,.0f} s"


def pvalue(p, none: str = "not computed") -> str:
    if missing(p):
        return none
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}"


def and_list(items) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def compact_ids(ids) -> str:
    """Sorted row indices as arithmetic runs: [0, 100, ..., 9900] -> '0, 100, ..., 9900 (every 100th, 100 rows)'."""
    ids = sorted(int(i) for i in ids)
    if not ids:
        return "none"
    if len(ids) == 1:
        return str(ids[0])
    runs = []  # (start, stop, step, count)
    i = 0
    while i < len(ids):
        if i + 2 < len(ids) and ids[i + 1] - ids[i] == ids[i + 2] - ids[i + 1]:
            step = ids[i + 1] - ids[i]
            j = i + 1
            while j + 1 < len(ids) and ids[j + 1] - ids[j] == step:
                j += 1
            runs.append((ids[i], ids[j], step, j - i + 1))
            i = j + 1
        else:
            runs.append((ids[i], ids[i], 0, 1))
            i += 1
    parts = []
    for start, stop, step, count in runs:
        if count == 1:
            parts.append(str(start))
        elif step == 1:
            parts.append(f"{start}–{stop}")
        else:
            parts.append(f"{start}, {start + step}, …, {stop} (step {step})")
    return "; ".join(parts)
