"""The list of log-likelihood families (csrc/families.def, seen through fusedgan.families): every
family has its functional, its numpy function, its fit routine and its test references, each
taking the family's own arguments."""

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from references import REFERENCES

import fusedgan.numpy as fnp
from fusedgan import functional as F
from fusedgan import mle
from fusedgan.families import FAMILIES


def test_the_list_is_well_formed():
    assert FAMILIES["normal"].params == ("loc", "scale") and FAMILIES["normal"].positive == ("scale",)
    for name, info in FAMILIES.items():
        assert name.isidentifier() and info.name == name and info.data in ("x", "k")
        assert 1 <= len(info.params) <= 3 and set(info.positive) <= set(info.params)
        assert len(set((info.data, *info.params))) == 1 + len(info.params)


@pytest.mark.parametrize("module, dims", [(F, "dim"), (fnp, "axis")], ids=["functional", "numpy"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_has_its_functions(family, module, dims):
    info = FAMILIES[family]
    function = getattr(module, info.function_name)
    assert info.function_name in module.__all__
    parameters = inspect.signature(function).parameters
    assert list(parameters) == [info.data, *info.params, dims]
    assert parameters[dims].kind is inspect.Parameter.KEYWORD_ONLY and parameters[dims].default == -1
    assert info.density in function.__doc__


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_has_its_fit_and_references(family):
    assert family in mle.FAMILIES
    assert len(REFERENCES[family].params) == len(FAMILIES[family].params)
    fitted = mle.fit(family, REFERENCES[family].data((2, 50), 1), **REFERENCES[family].fit_options)
    assert list(fitted) == list(FAMILIES[family].params)


def test_fit_knows_exactly_the_families_and_the_composite_ones():
    assert set(mle.FAMILIES) == set(FAMILIES) | {"categorical", "normal_mixture", "multivariate_normal"}
    assert set(REFERENCES) == set(FAMILIES)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_op_takes_each_family_with_its_parameter_count(family):
    count = len(FAMILIES[family].params)
    x = REFERENCES[family].data((2, 3), 0)
    params = [make((2, 1)) for make in REFERENCES[family].params]
    assert torch.ops.fusedgan.log_likelihood(family, x, *params, dim=[-1]).shape == (2,)
    too_many = [*params, *[torch.ones(())] * (3 - count)] if count < 3 else params[:2]
    with pytest.raises(ValueError, match=f"the {family} family takes {count} parameter"):
        torch.ops.fusedgan.log_likelihood(family, x, *too_many)


def test_the_docs_tables_are_current():
    """docs/api.md's lists of families and fit routines are generated from the code."""
    script = Path(__file__).resolve().parents[1] / "docs" / "generate.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
