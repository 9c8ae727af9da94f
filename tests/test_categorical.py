"""The categorical log-likelihood (csrc/torch/categorical.cpp, composed from ATen ops)
against torch.distributions.Categorical."""

import pytest
import torch
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


def test_categorical_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.categorical_log_likelihood(torch.tensor([0, 3]), torch.zeros(3))
    with pytest.raises(RuntimeError, match="expected labels to be an integer tensor"):
        F.categorical_log_likelihood(torch.tensor([0.0]), torch.zeros(3))


def opcheck_samples():
    yield torch.ops.fusedgan.categorical_log_likelihood.default, (torch.tensor([[0, 2]]), torch.zeros(1, 1, 3, requires_grad=True), [-1])


test_opcheck, test_every_op_has_an_opcheck_sample = opcheck_tests(list(opcheck_samples()), lambda name: "categorical" in name)


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
