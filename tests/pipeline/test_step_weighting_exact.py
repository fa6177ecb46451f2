"""The training step's loss weighting: each micro-batch's mean loss is weighted by its share of the optimizer
step's rows (pipeline/engine/loop.py `_plan`), so the accumulated gradient is the gradient of the step's mean
loss however the rows are cut; the step returns the unweighted loss (pipeline/engine/step.py)."""
import types

import pytest
import torch

from pipeline.engine import loop
from pipeline.engine import step as step_mod
from pipeline.engine.distributed import Dist


def _cfg(batch_size: int):
    train = types.SimpleNamespace(batch_size=batch_size, pad_to_multiple_of=1, packing=False)
    return types.SimpleNamespace(train=train)


def test_plan_weights_are_each_micro_batch_share_of_its_step():
    seqs = [[1] * (i + 1) for i in range(8)]
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]).numpy()
    order = list(range(8))
    steps = loop._plan(_cfg(5), seqs, labels, order, micro=2, dist=Dist(), pad_id=0, pin=False)
    # step 1: rows 0-4 cut 2 + 2 + 1; step 2 (the epoch's short last step): rows 5-7 cut 2 + 1
    assert [[w for _, _, w in mine] for _, mine in steps] == [[2 / 5, 2 / 5, 1 / 5], [2 / 3, 1 / 3]]
    assert [tokens for tokens, _ in steps] == [1 + 2 + 3 + 4 + 5, 6 + 7 + 8]
    assert [y.tolist() for _, y, _ in steps[0][1]] == [[0, 1], [2, 0], [1]]
    # each micro-batch holds its own rows' tokens (right-padded with pad_id 0)
    assert [b.input_ids.tolist() for b, _, _ in steps[1][1]] == [[[1] * 6 + [0], [1] * 7], [[1] * 8]]
    # two ranks: micro-batch k goes to rank k mod 2, weights still shares of the whole step
    rank1 = loop._plan(_cfg(5), seqs, labels, order, micro=2, dist=Dist(rank=1, world=2), pad_id=0, pin=False)
    assert [[w for _, _, w in mine] for _, mine in rank1] == [[2 / 5], [1 / 3]]


@pytest.fixture
def linear_model(monkeypatch):
    """A model whose logits are a linear map of the first token id: enough to check gradients by hand."""
    w = torch.nn.Parameter(torch.tensor([[0.5, -1.0, 2.0]]))
    monkeypatch.setattr(step_mod.forward, "logits", lambda model, batch: batch.input_ids[:, :1].float() @ w)
    return w


def _batch(ids):
    from pipeline.model import batching
    return batching.make([[i] for i in ids], 0, 1, False)


def test_weighted_micro_batches_give_the_gradient_of_the_step_mean(linear_model):
    w = linear_model
    s = step_mod.EagerStep(None, [w], device=torch.device("cpu"), dtype=torch.float32)
    ids, y = [1, 2, 3], torch.tensor([0, 2, 1])
    full = torch.nn.functional.cross_entropy(torch.tensor(ids, dtype=torch.float32)[:, None] @ w, y)
    (expected,) = torch.autograd.grad(full, w)
    loss_a = s(_batch(ids[:2]), y[:2], weight=2 / 3)
    loss_b = s(_batch(ids[2:]), y[2:], weight=1 / 3)
    assert torch.allclose(w.grad, expected, atol=1e-6)
    # the returned losses are the unweighted micro-batch means; weighted, they sum to the step's mean loss
    assert float(2 / 3 * loss_a + 1 / 3 * loss_b) == pytest.approx(float(full), abs=1e-6)
    alone = torch.nn.functional.cross_entropy(torch.tensor([[3.0]]) @ w, y[2:])
    assert float(loss_b) == pytest.approx(float(alone), abs=1e-6)
    assert not loss_a.requires_grad


def test_a_rank_without_rows_adds_zeros(linear_model):
    s = step_mod.EagerStep(None, [linear_model], device=torch.device("cpu"), dtype=torch.float32)
    s.no_micro_batch()
    assert linear_model.grad.tolist() == [[0.0, 0.0, 0.0]]


def test_the_default_weight_is_one_and_a_loss_scaler_scales_the_backward(linear_model):
    w = linear_model
    y = torch.tensor([2, 0])
    full = torch.nn.functional.cross_entropy(torch.tensor([[1.0], [2.0]]) @ w, y)
    (expected,) = torch.autograd.grad(full, w)
    step_mod.EagerStep(None, [w], device=torch.device("cpu"), dtype=torch.float32)(_batch([1, 2]), y)
    assert torch.allclose(w.grad, expected, atol=1e-6)

    class TimesFour:  # a GradScaler's part the step uses: scale the loss before backward
        def scale(self, t):
            return t * 4

    w.grad = None
    scaled = step_mod.EagerStep(None, [w], device=torch.device("cpu"), dtype=torch.float32, scaler=TimesFour())
    loss = scaled(_batch([1, 2]), y, weight=0.5)
    assert torch.allclose(w.grad, 2 * expected, atol=1e-6)  # 4 x 0.5
    assert float(loss) == pytest.approx(float(full), abs=1e-6)  # unscaled, unweighted


def test_zero_grad_drops_the_gradients(linear_model):
    w = linear_model
    s = step_mod.EagerStep(None, [w], device=torch.device("cpu"), dtype=torch.float32)
    opt = torch.optim.SGD([w], lr=0.1)
    s(_batch([1]), torch.tensor([0]))
    assert w.grad is not None and float(w.grad.abs().sum()) > 0
    s.zero_grad(opt)
    assert w.grad is None  # set to None, not zeros: the next backward writes instead of adding
