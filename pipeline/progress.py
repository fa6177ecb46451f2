"""Progress bars with ETA (tqdm), quiet enough for logs when stderr is not a terminal."""
import sys

from tqdm import tqdm


def bar(iterable=None, **kw):
    kw.setdefault("dynamic_ncols", True)
    kw.setdefault("leave", True)
    if not sys.stderr.isatty():
        kw.setdefault("mininterval", 5.0)
    return tqdm(iterable, **kw)
