"""Running the project's command-line scripts as a user would."""

from __future__ import annotations

import subprocess
import sys

from scripts.serving import ROOT


def run_script(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m scripts.<module> ARGS`` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", f"scripts.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
