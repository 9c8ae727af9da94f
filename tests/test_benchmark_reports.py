"""The benchmark results' readers: the targets table (benchmarks/targets.py) and the
comparison of two runs (benchmarks/compare.py), on results CSV files written here."""

from __future__ import annotations

from pathlib import Path

import compare
import targets
from helpers import append_results
from longformat import latest_of_each, latest_runs

MI = 1 << 20


def flat(p50: float) -> tuple[float, float, float]:
    return p50, p50, p50


def test_targets_are_figured_from_the_latest_run_of_each_file(tmp_path):
    normal = ("normal_log_likelihood", "full", "1024x16384")
    append_results(tmp_path / "loglik.csv", "2026-01-01T00:00:00+00:00", [(normal[0], "fusedgan", *normal[1:], flat(100.0))])
    append_results(tmp_path / "loglik.csv", "2026-02-01T00:00:00+00:00",
              [(normal[0], provider, *normal[1:], flat(p50)) for provider, p50 in
               (("fusedgan", 10.0), ("compile", 25.0), ("torch.distributions", 900.0))])
    append_results(tmp_path / "bce.csv", "2026-02-01T00:00:00+00:00",
              [("bce_with_logits", provider, "full", str(16 * MI), flat(p50)) for provider, p50 in (("fusedgan", 30.0), ("copy", 10.0))])
    lines = targets.table(latest_of_each(tmp_path)).splitlines()
    assert "| `normal_log_likelihood` fwd+bwd, 1024 × 16384 | `torch.compile` | ≥ 2× | 10.0 µs | 25.0 µs | 2.50× | met |" in lines
    assert "| `normal_log_likelihood` fwd+bwd, 1024 × 16384 | `torch.distributions` | ≥ 80× | 10.0 µs | 900.0 µs | 90.0× | met |" in lines
    # the copy's 8 bytes an element in 10 µs: the roofline of BCE's 12 is 15 µs
    assert ("| `bce_with_logits` fwd+bwd, 16M | the same-run copy roofline | within 1.5× its time | 30.0 µs | 15.0 µs | "
            "2.00× its time | MISSED |") in lines
    assert "| `laplace_log_likelihood` fwd+bwd, 1024 × 16384 | `torch.distributions` | ≥ 10× |  |  |  | not measured |" in lines
    assert f"2 met, 1 MISSED, {len(targets.TARGETS) - 3} not measured, from these runs:" in lines
    assert "- `entropy`: no run" in lines


def test_compare_puts_the_regressions_first_and_marks_those_beyond_the_noise(tmp_path):
    case = ("bce_with_logits", "full", "1048576")
    append_results(tmp_path / "old.csv", "2026-01-01T00:00:00+00:00",
              [(case[0], "fusedgan", *case[1:], (95.0, 100.0, 105.0)), (case[0], "eager", *case[1:], (990.0, 1000.0, 1010.0)),
               ("entropy", "fusedgan", "full", "16384x16", flat(5.0))])
    append_results(tmp_path / "new.csv", "2026-01-02T00:00:00+00:00",
              [(case[0], "fusedgan", *case[1:], (115.0, 120.0, 125.0)), (case[0], "eager", *case[1:], (960.0, 1010.0, 1020.0))])
    lines = compare.comparison(latest_runs(tmp_path / "old.csv")["cpu"], latest_runs(tmp_path / "new.csv")["cpu"])
    assert lines[2:] == [
        "| 1.200 | bce_with_logits | fusedgan | full | 1048576 | float32 | 100.0 µs | 120.0 µs | slower |",
        "| 1.010 | bce_with_logits | eager | full | 1048576 | float32 | 1.00 ms | 1.01 ms |  |",
        "",
        "Only in the old run (1 of its rows): entropy (full, 16384x16).",
    ]
