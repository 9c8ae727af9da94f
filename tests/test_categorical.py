"""The categorical log-likelihood (csrc/torch/categorical.cpp, composed from ATen ops: label
counts where the logits are a data set's, gathered log-probabilities otherwise) against
torch.distributions.Categorical."""

import math

import pytest
import torch
import torch.nn.functional as TF
from helpers import opcheck_tests
from references import draw

from fusedgan import functional as F


def test_categorical_matches_torch_distributions_and_gradcheck():
    labels = torch.randint(0, 5, (3, 40), generator=torch.Generator().manual_seed(17))
    for logits in (draw((3, 1, 5), 18), draw((3, 40, 5), 19)):
        logits.requires_grad_()
        value = F.categorical_log_likelihood(labels, logits)
        expected = torch.distributions.Categorical(logits=logits).log_prob(labels).sum(-1)
        torch.testing.assert_close(value, expected)
        assert torch.autograd.gradcheck(lambda l: F.categorical_log_likelihood(labels, l), (logits,))
    assert F.categorical_log_likelihood(labels, draw((5,), 20), dim=None).shape == ()
    assert F.categorical_log_likelihood(torch.tensor(2), draw((5,), 20), dim=-1).shape == ()


@pytest.mark.parametrize("labels_shape, logits_shape, dim", [
    ((3, 40), (3, 1, 5), -1),  # a data set's logits: counted
    ((2, 3, 40), (2, 1, 1, 5), (1, 2)),  # counted over two dims
    ((40, 3), (1, 3, 5), 0),  # counted along the first dim
    ((40, 3), (5,), None),  # one set of logits for every label
    ((3, 40), (3, 40, 5), -1),  # a point's logits: gathered
    ((3, 40), (3, 1, 5), ()),  # no sum
])
def test_every_layout_matches_torch_distributions_in_value_and_gradients(labels_shape, logits_shape, dim):
    g = torch.Generator().manual_seed(21)
    labels = torch.randint(0, 5, labels_shape, generator=g, dtype=torch.int32)  # any integer dtype
    logits = torch.randn(logits_shape, generator=g, dtype=torch.float64, requires_grad=True)
    value = F.categorical_log_likelihood(labels, logits, dim=dim)
    log_prob = torch.distributions.Categorical(logits=logits, validate_args=False).log_prob(labels.long())
    expected = log_prob.sum() if dim is None else log_prob.sum(dim) if dim != () else log_prob
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn(value.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(value, logits, grad)[0], torch.autograd.grad(expected, logits, grad)[0])
    assert torch.autograd.gradgradcheck(lambda l: F.categorical_log_likelihood(labels, l, dim=dim), (logits,))


def test_logits_expanded_along_the_data_get_a_gradient_per_point():
    """Expanded logits (stride 0, full size) are one per point as far as autograd knows: each
    point's row gets its own gradient, as torch.distributions gives."""
    labels = torch.tensor([0, 2, 1, 2])
    logits = torch.randn(1, 3, dtype=torch.float64).expand(4, 3).requires_grad_()
    ours = torch.autograd.grad(F.categorical_log_likelihood(labels, logits, dim=-1), logits)[0]
    expected = torch.autograd.grad(torch.distributions.Categorical(logits=logits).log_prob(labels).sum(), logits)[0]
    torch.testing.assert_close(ours, expected)


def test_impossible_classes():
    """A class of probability 0 (logit -inf) adds nothing unless a label names it; then -inf."""
    logits = torch.tensor([[[0.0, -float("inf"), 0.0]], [[0.0, -float("inf"), 0.0]]], requires_grad=True)
    value = F.categorical_log_likelihood(torch.tensor([[0, 2, 2], [0, 1, 2]]), logits)
    torch.testing.assert_close(value, torch.tensor([3 * -math.log(2), -float("inf")]))
    (grad,) = torch.autograd.grad(value[0], logits)
    torch.testing.assert_close(grad[0, 0], torch.tensor([-0.5, 0.0, 0.5]))


def test_half_precision_counts_past_2048():
    """Counts beyond half's whole numbers (2048) still count one each."""
    logits = torch.tensor([[0.0, 0.0]], dtype=torch.float16, requires_grad=True)
    value = F.categorical_log_likelihood(torch.zeros(1, 5001, dtype=torch.long), logits.unsqueeze(-2))
    assert value.dtype == torch.float16
    torch.testing.assert_close(value.float(), torch.tensor([-5001 * math.log(2)]), rtol=1e-3, atol=0)


def test_repeated_dims_are_refused():
    with pytest.raises(ValueError, match="dim 1 appears more than once"):
        F.categorical_log_likelihood(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 1, 4), dim=(1, -1))


def test_categorical_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.categorical_log_likelihood(torch.tensor([0, 3]), torch.zeros(3))
    with pytest.raises(RuntimeError, match="expected labels to be an integer tensor"):
        F.categorical_log_likelihood(torch.tensor([0.0]), torch.zeros(3))


# One; a few (byte counters up to 16 classes, interleaved histograms above); many.
@pytest.mark.parametrize("classes", [1, 5, 16, 17, 3000])
def test_label_counts_match_one_hot_sums(classes):
    labels = torch.randint(0, classes, (7, 1001), generator=torch.Generator().manual_seed(42))
    for dtype in (torch.int64, torch.int32, torch.uint8 if classes <= 256 else torch.int16):
        counts = torch.ops.fusedgan._label_counts(labels.to(dtype), classes)
        assert counts.dtype == torch.float64
        assert torch.equal(counts, TF.one_hot(labels, classes).sum(1).double())
    assert torch.equal(torch.ops.fusedgan._label_counts(labels[:, :0], classes), torch.zeros(7, classes, dtype=torch.float64))


@pytest.mark.parametrize("points", [1, 1020, 1021, 5003])  # around the 255 adds a byte counter holds
def test_label_counts_of_one_repeated_label(points):
    labels = torch.full((2, points), 3)
    counts = torch.ops.fusedgan._label_counts(labels, 16)
    assert torch.equal(counts, TF.one_hot(labels, 16).sum(1).double())


@pytest.mark.parametrize("where", [57, 102])  # within the vectors, in the tail after them
@pytest.mark.parametrize("bad", [-1, 5, 15, 16, 2**40, 2**61])
def test_label_counts_refuse_labels_out_of_range(bad, where):
    labels = torch.zeros(3, 103, dtype=torch.long)
    labels[2, where] = bad
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        torch.ops.fusedgan._label_counts(labels, 5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        F.categorical_log_likelihood(labels, torch.zeros(3, 1, 5))


def opcheck_samples():
    yield torch.ops.fusedgan.categorical_log_likelihood.default, (torch.tensor([[0, 2]]), torch.zeros(1, 1, 3, requires_grad=True), [-1])
    yield torch.ops.fusedgan._label_counts.default, (torch.tensor([[0, 2, 2], [1, 0, 2]]), 3)


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(
    list(opcheck_samples()), lambda name: "categorical" in name or "label_counts" in name)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_fullgraph(dynamic):
    def nll(labels, logits):
        return -F.categorical_log_likelihood(labels, logits).mean()

    compiled = torch.compile(nll, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for sets in (8, 12):
        labels = torch.randint(0, 3, (sets, 32), generator=torch.Generator().manual_seed(sets))
        logits = torch.zeros(sets, 1, 3, requires_grad=True)
        expected, actual = nll(labels, logits), compiled(labels, logits)
        torch.testing.assert_close(actual, expected)
        torch.testing.assert_close(torch.autograd.grad(actual, logits)[0], torch.autograd.grad(expected, logits)[0])
