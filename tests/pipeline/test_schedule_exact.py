"""The learning-rate schedule the training loop builds (pipeline/engine/loop.py `_scheduler`), step by step
against values worked out by hand, not against the plain reference loop (which shares the scheduler, so an
agreement test cannot see a wrong mapping)."""
import pytest
import torch

from pipeline.engine.loop import _scheduler
from records.config_reading import load_config
from tests.conftest import ROOT

CONFIG = ROOT / "configs/tiny-cpu.yaml"


def _lrs(name: str, warmup_ratio: float, total: int = 10, lr: float = 1.0) -> list[float]:
    cfg = load_config(CONFIG, [f"train.scheduler={name}", f"train.warmup_ratio={warmup_ratio}"], check_files=False)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = _scheduler(cfg, opt, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_linear_warms_up_then_decays_to_zero():
    # 10 steps, warmup round(0.2 * 10) = 2: 0, 1/2, then (10 - s) / 8 for s = 2..9
    assert _lrs("linear", 0.2) == pytest.approx([0.0, 0.5, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])


def test_linear_without_warmup():
    assert _lrs("linear", 0.0) == pytest.approx([(10 - s) / 10 for s in range(10)])


def test_constant_warms_up_then_stays():
    assert _lrs("constant", 0.2) == pytest.approx([0.0, 0.5] + [1.0] * 8)


def test_cosine_is_half_a_cosine_after_warmup():
    import math
    lrs = _lrs("cosine", 0.2)
    assert lrs[:2] == pytest.approx([0.0, 0.5])
    assert lrs[2:] == pytest.approx([0.5 * (1 + math.cos(math.pi * (s - 2) / 8)) for s in range(2, 10)])


def test_warmup_steps_are_rounded():
    # 0.25 * 10 = 2.5 rounds to 2 (banker's rounding), 0.35 * 10 = 3.5 to 4
    assert _lrs("constant", 0.25)[:3] == pytest.approx([0.0, 0.5, 1.0])
    assert _lrs("constant", 0.35)[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
