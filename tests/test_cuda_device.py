"""What only a CUDA device shows (`make gpu-check` runs this module; skipped without a GPU):
reductions that give the same bits run after run, two streams at once, ops on the current
stream, CUDA-graph capture and replay, and float16 tensors of more than 2**31 elements."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from cuda_cases import every_op, run
from helpers import TOLERANCES

from fusedgan import functional as F

pytestmark = pytest.mark.cuda

SHAPE = (64, 16411)  # 1,050,304 elements: the reductions' 1024 blocks go four times round the grid
SLEEP_CYCLES = 50_000_000  # about 25 ms of a GPU's time, more than the host takes to queue a case
HUGE = 2**31 + 17
CHUNK = 2**28  # the references' slices of the huge tensors


def same_bits(actual, expected) -> bool:
    return all(torch.equal(a, e) for a, e in zip(actual, expected, strict=True))


def test_every_op_gives_the_same_bits_run_after_run():
    mismatched = []
    for name, (fn, inputs) in every_op(*SHAPE).items():
        first = run(fn, inputs)
        if not all(same_bits(run(fn, inputs), first) for _ in range(4)):
            mismatched.append(name)
    assert not mismatched


# More sets than 4,096, 5M elements; and rows long enough to be summed in slices.
@pytest.mark.parametrize("shape", [(5000, 1000), (3, 1_000_003)])
def test_every_op_matches_the_cpu_kernels_at_large_shapes(shape):
    """The GPU's values and gradients against the CPU kernels' on the same numbers (float32:
    the two differ in elementary functions and summation order)."""
    cpu_cases = every_op(*shape, device="cpu")
    mismatched = []
    for name, (fn, inputs) in every_op(*shape).items():
        expected = run(*cpu_cases[name])
        for a, e in zip(run(fn, inputs), expected, strict=True):
            if not torch.allclose(a.cpu().double(), e.double(), rtol=1e-4, atol=1e-4, equal_nan=True):
                mismatched.append(name)
                break
    assert not mismatched


def test_two_streams_at_once_give_the_default_streams_bits():
    """Each case launched on two streams that a gate holds back until both are queued, so
    that the two run at once, each with its own scratch memory."""
    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    gate = torch.cuda.Stream()
    mismatched = []
    for name, (fn, inputs) in every_op(*SHAPE).items():
        expected = run(fn, inputs)
        gate.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(gate):
            torch.cuda._sleep(SLEEP_CYCLES)
        opened = gate.record_event()
        results = []
        for stream in streams:
            stream.wait_event(opened)
            with torch.cuda.stream(stream):
                results.append(run(fn, inputs))
        torch.cuda.synchronize()
        if not all(same_bits(result, expected) for result in results):
            mismatched.append(name)
    assert not mismatched


def test_ops_run_on_the_current_stream():
    """Inside `with torch.cuda.stream(side)` each case reads inputs that side itself writes
    after a delay: an op launched on any other stream would read them before they are written."""
    side = torch.cuda.Stream()
    mismatched = []
    for name, (fn, inputs) in every_op(*SHAPE).items():
        expected = run(fn, inputs)
        staged = [torch.zeros_like(t) for t in inputs]
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            torch.cuda._sleep(SLEEP_CYCLES)
            for target, source in zip(staged, inputs):
                target.copy_(source)
            actual = run(fn, staged)
        side.synchronize()
        if not same_bits(actual, expected):
            mismatched.append(name)
    assert not mismatched


def test_cuda_graph_of_bce_and_discriminator_cost_replays_eagers_bits():
    """Forward and backward captured once, replayed on new data: no op synchronises with the
    host or allocates outside the graph's pool, and the replay computes what eager mode does."""
    g = torch.Generator(device="cuda").manual_seed(0)
    x, y, real, fake = (torch.empty(n, device="cuda").requires_grad_() for n in (1 << 20, 1 << 20, 4099, 70001))

    def refill():
        with torch.no_grad():
            for t in (x, real, fake):
                t.normal_(generator=g)
            y.uniform_(generator=g)

    def step():
        bce = F.binary_cross_entropy_with_logits(x, y)
        cost = F.discriminator_cost(real, fake)
        return (bce.detach(), cost.detach(), *torch.autograd.grad(bce + 0.5 * cost, (x, y, real, fake)))

    refill()
    warmup = torch.cuda.Stream()  # as torch.cuda.graph asks: a few eager runs off the default stream
    warmup.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warmup):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(warmup)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    refill()
    graph.replay()
    assert same_bits(captured, step())


def needs_gpu_memory(gib: int) -> None:
    if torch.cuda.get_device_properties(0).total_memory < gib << 30:
        pytest.skip(f"needs {gib} GiB of GPU memory")


def chunks():
    return (slice(start, start + CHUNK) for start in range(0, HUGE, CHUNK))


def test_float16_bce_past_2_31_elements_unreduced():
    """Value and gradient of every element, the last 17 past index 2**31 included, against
    torch's float32 computation slice by slice."""
    needs_gpu_memory(32)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(HUGE, generator=g, device="cuda", dtype=torch.float16).requires_grad_()
    y = torch.rand(HUGE, generator=g, device="cuda", dtype=torch.float16)
    grad_output = torch.rand(HUGE, generator=g, device="cuda", dtype=torch.float16)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    (grad,) = torch.autograd.grad(loss, x, grad_output)
    for part in chunks():
        xs = x[part].detach().float().requires_grad_()
        expected = TF.binary_cross_entropy_with_logits(xs, y[part].float(), reduction="none")
        (expected_grad,) = torch.autograd.grad(expected, xs, grad_output[part].float())
        torch.testing.assert_close(loss[part].float(), expected.detach(), **TOLERANCES[torch.float16])
        torch.testing.assert_close(grad[part].float(), expected_grad, **TOLERANCES[torch.float16])


def test_float16_bce_sum_and_mean_past_2_31_elements():
    """Logits of 16 against a target of 1 (a loss of 1.1e-7 each) and, in the 17 elements past
    index 2**31, of -64 (a loss of 64): the float16 sum stays finite (about 1330) and both parts
    show in it, as in the mean (a float16 subnormal, compared to the last bit)."""
    needs_gpu_memory(24)
    x = torch.full((HUGE,), 16.0, device="cuda", dtype=torch.float16)
    x[-17:] = -64.0
    x.requires_grad_()
    y = torch.ones_like(x)
    total = F.binary_cross_entropy_with_logits(x, y, reduction="sum")
    (grad,) = torch.autograd.grad(total, x)
    mean = F.binary_cross_entropy_with_logits(x.detach(), y, reduction="mean")
    expected = sum(TF.binary_cross_entropy_with_logits(x[part].detach().double(), y[part].double(), reduction="sum")
                   for part in chunks())
    torch.testing.assert_close(total, expected.half(), rtol=1e-3, atol=0)
    torch.testing.assert_close(mean, (expected / HUGE).half(), rtol=1e-3, atol=0)
    for part in chunks():  # the sum's gradient, sigmoid(x) - 1, to a float16 subnormal's step
        expected_grad = torch.sigmoid(x[part].detach().float()) - 1
        torch.testing.assert_close(grad[part].float(), expected_grad, rtol=1e-3, atol=2**-24)
