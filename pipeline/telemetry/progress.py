"""Progress bars (tqdm) that suit where they are shown.

On a terminal: tqdm's live bar, redrawn in place, with its ETA. Anywhere else (a CI log, a notebook, `nohup`,
a file, a terminal that reports zero width) redrawing in place smears: each redraw lands in the log behind a
carriage return, and a zero-width bar prints empty lines. There a bar prints whole lines instead, at most one
every LOG_INTERVAL_S, each readable on its own and still with its ETA:

    epoch 2/5: 60 % (12/20 step) [00:31<00:20, 0.39 step/s, loss=1.068]

Bars that finish within LOG_INTERVAL_S print nothing there (the stage's own lines say what happened).
"""
from __future__ import annotations

import os
import re
import sys

LOG_INTERVAL_S = 10.0
LOG_FORMAT = "{desc}: {percentage:.0f} % ({n_fmt}/{total_fmt} {unit}) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # cursor moves tqdm writes for nested bars


def is_terminal(stream) -> bool:
    """A terminal that can redraw a bar: a tty with a width."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):
        return False


class LineWriter:
    """The file a bar writes to when it cannot redraw: every redraw becomes one whole line; carriage returns,
    cursor moves and blank writes are dropped, and so is a line that only repeats the last one's progress
    (tqdm draws the last step again when it closes, with the time moved on)."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, text: str) -> None:
        for part in re.split(r"[\r\n]", _CONTROL.sub("", text)):
            line = part.strip()
            progress = line.split(" [")[0]  # "desc: 60 % (12/20 step)": what changed, without the times
            if line and progress != self.last:
                self.stream.write(line + "\n")
                self.last = progress

    def flush(self) -> None:
        self.stream.flush()


def bar(iterable=None, file=None, **kw):
    """tqdm over `iterable`, writing to `file` (stderr by default) as a live bar or as log lines."""
    # Imported here: the CLI imports this module for is_terminal, and its torch-free commands (verify, export,
    # data-doc) run in the report environment, which has no tqdm.
    from tqdm import tqdm
    file = file if file is not None else sys.stderr
    kw.setdefault("leave", True)
    if is_terminal(file):
        kw.setdefault("dynamic_ncols", True)
        return tqdm(iterable, file=file, **kw)
    kw.setdefault("mininterval", LOG_INTERVAL_S)
    kw.setdefault("delay", LOG_INTERVAL_S)
    kw.setdefault("bar_format", LOG_FORMAT)
    return tqdm(iterable, file=LineWriter(file), **kw)
