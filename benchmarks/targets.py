"""The performance targets on the CPU, each against the latest run of its benchmark: every
figure, met or not (standard library only).

Each ratio compares fusedgan's median with a baseline's median of the same run, float32 (the
fits: float64 and float32), in which the providers were timed in turns
(common.time_providers). The baselines are what a
speed-conscious user runs: torch eager, `torch.distributions` objects built with
`validate_args=False`, `torch.compile` of the same composition (default mode, fullgraph,
static shapes, warmed up), scipy/numpy for fusedgan.numpy. The roofline of BCE-with-logits
forward + backward is the time a copy of the same run would take to move its 12 bytes an
element (x and y read, the gradient written) at the copy's bandwidth. Figures to report
come from the scripts' default rounds (7 to 15; at least 5); a run of a few ops (--ops)
leaves the others of its file unmeasured until the next full run.

Reads benchmarks/results/, or the folder that FUSEDGAN_BENCH_RESULTS names (where the
benchmark scripts then write); docs/benchmarks.md shows the same table (benchmarks/report.py).

    python benchmarks/targets.py
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from longformat import Key, Run, duration, latest_of_each, readable_time, results_folder, shape_label, times


@dataclass(frozen=True)
class Target:
    stem: str  # the benchmark's CSV file
    op: str
    shape: str
    baseline: str  # the provider
    goal: float  # the least speed-up over the baseline; for a roofline, the most times its time
    mode: str = "full"
    roofline: float = 0.0  # a roofline target's bytes over the copy's (the baseline is "copy")
    dtype: str = "float32"

    def case(self) -> str:
        dtype = "" if self.dtype == "float32" else f", {self.dtype}"
        mode = {"full": " fwd+bwd", "forward": "", "fit per set": ""}.get(self.mode, f" ({self.mode})")
        return f"`{self.op}`{mode}, {shape_label(self.shape)}{dtype}"


AGAINST = {
    "eager": "torch eager",
    "compile": "`torch.compile`",
    "torch.distributions": "`torch.distributions`",
    "scipy": "the scipy/numpy composition",
    "scipy.fit": "scipy's fit, one set at a time",
    "copy": "the same-run copy roofline",
    "sklearn": "scikit-learn",
}
LOG_LIKELIHOOD = "1024x16384"
MI = 1 << 20
# The fit routines by method: closed forms and Newton's method have targets of their own.
CLOSED_FORMS = ("normal", "laplace", "exponential", "poisson", "bernoulli", "lognormal", "half_normal", "geometric",
                "binomial", "multivariate_normal")
NEWTON = ("student_t", "gamma", "beta", "weibull", "negative_binomial", "von_mises")
TARGETS = [
    *(Target("entropy", op, shape, baseline, goal) for op in ("entropy", "entropy_with_logits")
      for shape in ("16384x16", "256x50257") for baseline, goal in (("eager", 3), ("compile", 1.5))),
    Target("entropy", "binary_entropy_with_logits", str(MI), "compile", 1.5),
    Target("loglik", "normal_log_likelihood", LOG_LIKELIHOOD, "compile", 2),
    Target("loglik", "normal_log_likelihood", LOG_LIKELIHOOD, "torch.distributions", 80),
    *(Target("loglik", f"{family}_log_likelihood", LOG_LIKELIHOOD, baseline, goal)
      for family in ("laplace", "exponential", "bernoulli", "poisson", "student_t", "categorical", "gamma", "beta",
                     "lognormal", "weibull", "half_normal", "negative_binomial", "binomial", "geometric", "von_mises")
      for baseline, goal in (("torch.distributions", 10), ("compile", 1.5))),
    *(Target("multivariate_normal", "multivariate_normal_log_likelihood", "64x4096x16", baseline, goal)
      for baseline, goal in (("torch.distributions", 10), ("compile", 1.5))),
    *(Target("bce", "bce_with_logits", str(n), baseline, goal)
      for n, goals in ((MI, (6, 3)), (16 * MI, (10, 4))) for baseline, goal in zip(("eager", "compile"), goals)),
    Target("bce", "bce_with_logits", str(16 * MI), "copy", 1.5, roofline=12 / 8),
    *(Target("gan_costs", "discriminator_stats", shape, baseline, goal, mode="forward")
      for shape in ("2x256", f"2x{MI}") for baseline, goal in (("eager", 3), ("compile", 1.5))),
    Target("loglik", "numpy.categorical_log_likelihood", LOG_LIKELIHOOD, "scipy", 20, mode="forward"),
    Target("loglik", "numpy.normal_mixture_log_likelihood", "64x1024x8x16", "scipy", 20, mode="forward"),
    # EM to convergence from the same start, per set: one large set, and many small ones in one call
    *(Target("mle", f"{family}_fit", "10000x100" + "x3" * (family == "multivariate_normal"), "scipy.fit", goal,
             mode="fit per set", dtype="float64")
      for families, goal in ((CLOSED_FORMS, 1000), (NEWTON, 100)) for family in families),
    *(Target("mle", "normal_mixture_em", shape, "sklearn", goal, mode="fit per set", dtype=dtype)
      for shape, goal in (("1x100000x8x16", 10), ("1000x500x2x3", 100)) for dtype in ("float64", "float32")),
    # a training step of the DCGAN players against the textbook eager loop (the extras off)
    *(Target("trainer", "gan_step_dcgan", "64", "eager", 1.3, mode=update) for update in ("simultaneous", "alternating")),
]


def evaluate(target: Target, run: Optional[Run]) -> list[str]:
    """The table's cells after the target's: fusedgan's time, the baseline's, the figure, the result."""
    key = Key(target.op, "fusedgan", target.mode, target.shape, target.dtype)
    fused = run.p50.get(key) if run else None
    base = run.p50.get(key._replace(provider=target.baseline)) if run else None
    if fused is None or base is None:
        return ["", "", "", "not measured"]
    if target.roofline:
        ratio = fused / (base * target.roofline)
        return [duration(fused), duration(base * target.roofline), f"{times(ratio)} its time",
                "met" if ratio <= target.goal else "MISSED"]
    ratio = base / fused
    return [duration(fused), duration(base), times(ratio), "met" if ratio >= target.goal else "MISSED"]


def table(runs: dict[tuple[str, str], Run]) -> str:
    """The targets as a markdown table, and the run each benchmark's figures come from."""
    lines = ["| case | against | target | fusedgan | baseline | measured | result |", "|---|---|---|---|---|---|---|"]
    results = Counter()
    for target in TARGETS:
        goal = f"within {target.goal:g}× its time" if target.roofline else f"≥ {target.goal:g}×"
        cells = [target.case(), AGAINST[target.baseline], goal, *evaluate(target, runs.get((target.stem, "cpu")))]
        results[cells[-1]] += 1
        lines.append("| " + " | ".join(cells) + " |")
    counts = ", ".join(f"{results[result]} {result}" for result in ("met", "MISSED", "not measured"))
    lines += ["", f"{counts}, from these runs:", ""]
    for stem in sorted({target.stem for target in TARGETS}):
        run = runs.get((stem, "cpu"))
        where = "no run" if run is None else "; ".join(
            f"{device}, {threads} threads, torch {torch}" for device, threads, torch in sorted(run.machines)
        ) + f", {readable_time(run.timestamp)}"
        lines.append(f"- `{stem}`: {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    print(table(latest_of_each(results_folder())))


if __name__ == "__main__":
    main()
