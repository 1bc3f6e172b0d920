"""benchmarks/bench_train_step.py --phases: the per-phase accounting covers the whole step.

Not a timing test: it checks that the phases a step is split into add up to the step (FLOPs of the
phased step, terms backpropagated apart, equal those of the plain step) and that ART names its phases.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_train_step as bts  # noqa: E402
from _flops import FlopCount, count_flops  # noqa: E402


def _setup(name, seed=0):
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0])
    method, model = bts.build(name, "resnet_tiny", 3, seed, torch.device("cpu"))
    return method, model, x, y


@pytest.mark.parametrize("name", ["natural", "art", "art_fast"])
def test_phases_add_up_to_the_plain_step(name):
    method, model, x, y = _setup(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def plain():
        torch.manual_seed(3)
        out = method.step(model, x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    want = count_flops(plain)
    rec = bts.PhaseRecorder(torch.device("cpu"))
    with FlopCount() as counter:
        rec.counter = counter
        torch.manual_seed(3)
        bts.phased_step(method, model, opt, x, y, torch.device("cpu"), "none", rec)
    assert sum(rec.flops.values()) == want == counter.flops
    assert all(t >= 0 for t in rec.steps[0].values())
    names = list(rec.steps[0])
    assert names[-1] == "optimizer step" and bts.OTHER in names
    if name == "art":   # faithful: mask, T=3 steps, L_attr forward, CE forward, the two backward terms
        assert [n for n in names if n.startswith(("top-k", "attack step"))] == [
            "top-k mask (ReLU pass)", "attack step 1", "attack step 2", "attack step 3"]
        assert {"backward: L_attr", "backward: CE"} <= set(names)
        assert rec.flops[bts.OTHER] == 0          # every FLOP of ART's step is inside a named phase
    else:
        assert not any(n.startswith("attack step") for n in names)
    assert method.phase_hook is None             # the recorder is removed after the step


def test_lean_attack_steps_cost_fewer_flops_than_the_plain_double_backward():
    """The counts the benchmark prints: an attack step is 6 forward passes with the lean path
    (forward, g^y, g^i*, and three in the double backward), more with PyTorch's own. The stem's
    input gradients by phases (three a step) also multiply their empty taps: 12 x 4 x 4 against
    3 x 7 x 7 taps an output position for ResNet's 7x7/2 stem, a few hundredths of a pass."""
    method, model, x, y = _setup("art")
    with torch.no_grad():
        forward = count_flops(lambda: model(x))
    steps = {}
    for label, ctx in (("lean", None), ("plain", bts.plain_double_backward)):
        rec = bts.PhaseRecorder(torch.device("cpu"))
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        with FlopCount() as counter, (ctx() if ctx else torch.autograd.set_grad_enabled(True)):
            rec.counter = counter
            bts.phased_step(method, model, opt, x, y, torch.device("cpu"), "none", rec)
        steps[label] = rec.flops["attack step 1"] / forward
    assert 6.0 <= steps["lean"] <= 6.1
    assert steps["plain"] > steps["lean"] + 1


def test_a_row_that_fails_is_reported_and_the_others_still_run(monkeypatch, capsys):
    """On a lent GPU an out-of-memory row must not lose the others: the table keeps the row with its
    error, the other methods are timed, and the exit status says a row failed."""
    real = bts.timed_step

    def timed_step(method, *args, **kwargs):
        if type(method).__name__ == "ARTMethod":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(method, *args, **kwargs)

    monkeypatch.setattr(bts, "timed_step", timed_step)
    with pytest.raises(SystemExit, match="1 row\\(s\\) failed: art"):
        bts.main(["--size", "16", "--batch", "2", "--classes", "3", "--methods", "natural", "art", "--iters", "1",
                  "--warmup", "0", "--no-record"])
    out = capsys.readouterr().out
    assert "| art | failed: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB | | | |" in out
    assert "| natural | " in out and "1.00x" in out
