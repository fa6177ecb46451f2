"""Known-harmless library messages are silenced one by one: exactly that message, nothing else."""
import logging

from pipeline.telemetry import quiet
from tests.conftest import cli


def test_the_bitsandbytes_kernels_message_alone_is_dropped(caplog):
    quiet.install()
    quiet.install()  # twice: still one filter
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert sum(isinstance(f, quiet.DropMessage) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you "
                       "already `pip install kernels` and the kernels >= 0.11.1", "No module named 'kernels'")
        logger.warning("Failed to load something else: %s", "a real problem")
    assert [r.getMessage() for r in caplog.records] == ["Failed to load something else: a real problem"]


def test_a_command_that_loads_bitsandbytes_prints_nothing_on_stderr():
    r = cli("params", "configs/tiny-cpu.yaml")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr == ""
    assert '"trainable"' in r.stdout
