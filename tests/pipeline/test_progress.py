"""Progress bars: live with an ETA on a terminal; whole, clean lines in logs, notebooks and zero-width terminals."""
import fcntl
import io
import os
import select
import struct
import termios
import tty

import pytest

from pipeline.telemetry.progress import bar


def run_bar(file, n=5, **kw):
    b = bar(range(n), file=file, desc="epoch 1/3", unit="step", **kw)
    for i in b:
        b.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=False)


@pytest.fixture
def terminal():
    """(file writing to a pseudo-terminal, its width setter, a reader of what reached it)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no output processing: what we read is exactly what was written
    out = os.fdopen(slave, "w", buffering=1)

    def width(columns):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    def read():
        """Everything written so far (a pseudo-terminal hands it over in pieces)."""
        out.flush()
        chunks = []
        while select.select([master], [], [], 0.2)[0]:
            chunks.append(os.read(master, 1 << 16))
        return b"".join(chunks).decode()

    yield out, width, read
    out.close()
    os.close(master)


def assert_clean_lines(text: str, n: int):
    assert "\r" not in text and "\x1b" not in text
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.strip() for line in lines[:-1])  # ends with a newline, no blank line
    assert lines[-2].startswith(f"epoch 1/3: 100 % ({n}/{n} step) [") and "loss=" in lines[-2]
    assert all("<" in line for line in lines[:-1])  # every line keeps elapsed<remaining (the ETA)
    return lines[:-1]


def test_a_log_gets_one_whole_line_per_update_and_no_carriage_returns():
    log = io.StringIO()
    run_bar(log, mininterval=0, delay=0)
    lines = assert_clean_lines(log.getvalue(), 5)
    assert [line.split(" [")[0] for line in lines] == [f"epoch 1/3: {20 * k} % ({k}/5 step)" for k in range(6)]


def test_a_short_bar_stays_silent_in_a_log():
    """Finished within the log interval: nothing at all (the stage's own lines say what happened)."""
    log = io.StringIO()
    run_bar(log)
    assert log.getvalue() == ""


def test_a_zero_width_terminal_gets_log_lines(terminal):
    out, width, read = terminal
    width(0)
    run_bar(out, mininterval=0, delay=0)
    assert_clean_lines(read(), 5)


def test_a_terminal_gets_a_live_bar_with_its_eta(terminal):
    out, width, read = terminal
    width(100)
    run_bar(out, mininterval=0)
    text = read()
    assert text.count("\r") >= 5  # redrawn in place
    last = text.split("\r")[-1]
    assert "100%" in last and "5/5" in last and "|" in last and "<" in last and "loss=" in last
