"""The log-likelihood families, from the one list in the compiled module (csrc/families.def,
each row's formula in csrc/math/loglik.h): name, data argument, parameters with their
supports, and density. :mod:`fusedgan.functional` and :mod:`fusedgan.numpy` make each
family's function from this list, and :mod:`fusedgan.mle` keys its fit routines by these
names, so a family added to the list appears everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from . import _C

__all__ = ["Family", "FAMILIES", "define_functions"]


@dataclass(frozen=True)
class Family:
    name: str
    data: str  # the data argument's name: "x", or "k" for counts
    params: tuple[str, ...]
    positive: tuple[str, ...]  # the parameters that must be positive
    density: str

    @property
    def function_name(self) -> str:
        return f"{self.name}_log_likelihood"


FAMILIES: dict[str, Family] = {
    name: Family(name, data, tuple(p for p, _ in params), tuple(p for p, s in params if s == "positive"), density)
    for name, data, params, density in _C.log_likelihood_families()
}


def define_functions(namespace: dict, source: str, doc: str) -> list[str]:
    """Defines one function per family in `namespace` (a module's globals) from `source`, a
    template of its code, and `doc`, one of its docstring; both are formatted with the family's
    fields: name, function, data, params (their names, comma-separated), params_padded (the same
    padded with None to three), density, positive_rule (the sentence on the parameters that must
    be positive, or nothing). Real functions with the family's own
    signature, so that help(), keyword arguments and torch.compile see them as written out.
    Returns their names."""
    names = []
    for family in FAMILIES.values():
        fields = dict(
            name=family.name,
            function=family.function_name,
            data=family.data,
            params=", ".join(family.params),
            params_padded=", ".join([*family.params, *["None"] * (3 - len(family.params))]),
            density=family.density,
            positive_rule=(f"Values of {', '.join(f'``{p}``' for p in family.positive)} that are not positive (or "
                           "NaN) raise ValueError on CPU." if family.positive else ""),
        )
        exec(source.format(**fields), namespace)  # noqa: S102 - the template is ours, the fields the compiled list's
        function = namespace[family.function_name]
        function.__doc__ = doc.format(**fields)
        names.append(family.function_name)
    return names
