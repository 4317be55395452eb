"""Running the project's command-line modules as a user would, in this process.

A new interpreter importing torch, pandas and BentoML costs seconds per call, and the
commands' tests call them dozens of times; so :func:`run_module` runs the module as
``python -m`` does (``runpy``, ``sys.argv`` set, ``__main__``) with its output captured
and its exit status read from ``SystemExit``. tests/test_commands.py starts each of these
modules once as a real ``python -m`` subprocess, so their entry points are proven too.
What must run in a fresh interpreter (what a process imports at start, a runner booting)
goes through :func:`fresh_python`.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import subprocess
import sys
import traceback
import warnings
from collections.abc import Mapping

from tests.support.server import ROOT

# The modules tests run through run_module: tests/test_commands.py starts each for real.
COMMANDS = (
    "scripts.imports.credit",
    "scripts.imports.books",
    "scripts.imports.mask",
    "scripts.imports.mlflow",
    "model_bundle.batch",
    "model_bundle.monitoring.report",
)


def exit_status(code: object) -> int:
    """What the shell sees for ``SystemExit(code)``: None is 0, a message is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the repository root, in this process: its exit status
    and what it wrote to stdout and stderr (an uncaught exception: status 1, traceback on
    stderr, as the interpreter would)."""
    if module not in COMMANDS:
        raise ValueError(f"{module}: add it to COMMANDS, so its entry point is tested too")
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv, status = sys.argv, 0
    sys.argv = [module, *args]
    try:
        with (
            contextlib.chdir(ROOT),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            try:
                with warnings.catch_warnings():  # the test imported the module already
                    warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exit:
                status = exit_status(exit.code)
                if status == 1 and not isinstance(exit.code, int):
                    print(exit.code, file=sys.stderr)
            except Exception:
                traceback.print_exc()
                status = 1
    finally:
        sys.argv = saved_argv
    return subprocess.CompletedProcess(
        [sys.executable, "-m", module, *args], status, stdout.getvalue(), stderr.getvalue()
    )


def fresh_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -c CODE ARGS`` in a new interpreter from the repository root, its output
    captured as text; ``env`` the whole environment (default this one's, telemetry off)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=dict(env) if env is not None else {**os.environ, "BENTOML_DO_NOT_TRACK": "true"},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
