"""Finished chunks, recorded so an interrupted run can go on where it stopped (``--resume``).

Each chunk's output and errors are written as parts in ``OUTPUT.parts/`` and only then
recorded in its ``manifest.json`` (written atomically), so a chunk is either finished and
recorded or redone. A manifest also records what the run was (input file, size and
modification time, model tag, chunk size, options): resuming a different run is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ResumeError(ValueError):
    """The parts on disk belong to another run."""


def fingerprint(input_path: Path, **settings: Any) -> dict[str, Any]:
    stat = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **settings,
    }


@dataclass
class Manifest:
    directory: Path
    run: dict[str, Any]
    chunks: dict[int, dict[str, int]] = field(default_factory=dict)

    FILE = "manifest.json"

    @classmethod
    def open(cls, directory: Path, run: dict[str, Any], resume: bool) -> Manifest:
        """The manifest of ``run``: the recorded one with ``resume``, else a fresh one
        (earlier parts are removed)."""
        path = directory / cls.FILE
        if resume and path.exists():
            recorded = json.loads(path.read_text())
            if recorded["run"] != run:
                changed = sorted(k for k in run if recorded["run"].get(k) != run[k])
                raise ResumeError(
                    f"cannot resume: {directory} is from another run ({', '.join(changed)}"
                    " changed); run without --resume to start over"
                )
            chunks = {int(k): v for k, v in recorded["chunks"].items()}
            return cls(directory, run, chunks)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        manifest = cls(directory, run)
        manifest.save()
        return manifest

    def done(self, chunk: int) -> bool:
        return chunk in self.chunks

    def finish(self, chunk: int, rows: int, failed: int) -> None:
        self.chunks[chunk] = {"rows": rows, "failed": failed}
        self.save()

    def save(self) -> None:
        partial = self.directory / (self.FILE + ".partial")
        partial.write_text(json.dumps({"run": self.run, "chunks": self.chunks}, indent=1))
        os.replace(partial, self.directory / self.FILE)

    def part(self, chunk: int, kind: str, suffix: str) -> Path:
        return self.directory / f"{kind}-{chunk:06d}{suffix}"
