"""The `fusedgan` command."""

import pytest

from fusedgan import cli


def test_demo_trains_the_discriminator(capsys):
    assert cli.main(["demo", "--steps", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [line for line in lines if line.startswith("step")]
    first, last = steps[0], steps[-1]
    accuracy = lambda line: float(line.rsplit("accuracy", 1)[1])
    assert accuracy(last) > 0.95 and accuracy(last) >= accuracy(first)
    assert "stable at extreme logits" in lines[-1] and "nan" not in lines[-1]


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
