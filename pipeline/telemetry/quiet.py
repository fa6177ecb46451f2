"""Third-party messages that look like failures but are not, silenced one at a time, each with its reason.

Nothing is muted wholesale: each filter drops one message of one logger, and that logger's other messages
still show.
"""
from __future__ import annotations

import logging

# (logger, start of the message as the library formats it, why it is harmless)
KNOWN_HARMLESS = (
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community",
     "bitsandbytes (0.50), on a CPU with AVX512-BF16, tries when it is imported to fetch an optional faster 4-bit "
     "CPU kernel from the Hugging Face hub through the `kernels` package. Without it bitsandbytes uses its own "
     "CPU kernel; the results are the same, only some CPU inference is slower. The hub is not reachable here "
     "and the pipeline needs no download, so the 'pip install kernels' advice is noise on every command."),
)


class DropMessage(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def install() -> None:
    """Add the filters (once per logger and message; safe to call again)."""
    for name, start, _why in KNOWN_HARMLESS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessage) and f.start == start for f in logger.filters):
            logger.addFilter(DropMessage(start))
