"""Each command the tests run in process (tests/support/commands.py) starts for real as
``python -m MODULE``: its entry point imports and parses on its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.commands import COMMANDS, run_module
from tests.support.server import ROOT


@pytest.mark.parametrize("module", COMMANDS)
def test_the_command_starts_as_python_dash_m_and_in_process_alike(module: str) -> None:
    real = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert real.returncode == 0, real.stderr
    assert real.stdout.startswith("usage: "), real.stdout
    in_process = run_module(module, "--help")
    assert (in_process.returncode, in_process.stdout) == (0, real.stdout)


def test_a_usage_error_exits_2_with_the_message_on_stderr_in_process() -> None:
    result = run_module("model_bundle.batch", "iris")
    assert result.returncode == 2 and result.stdout == ""
    assert "python -m model_bundle.batch: error: the following arguments are required: input" in (
        result.stderr
    )


def test_a_module_tests_do_not_start_for_real_is_refused() -> None:
    with pytest.raises(ValueError, match="add it to COMMANDS"):
        run_module("scripts.train.defaults", "--help")
