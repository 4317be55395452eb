"""The container engine on this machine: Docker when its daemon answers, else Podman.

Podman on machines like ours needs two settings that a fresh clone must not depend on a
hand-made file for: the ``runc`` runtime (``crun``, where installed, refuses a hybrid cgroup
layout) and container rlimits within the host's hard limits (the process lacks
CAP_SYS_RESOURCE, so a container asking for more fails at start with "setrlimit: Operation not
permitted"). Both go into a containers.conf written from the host's own limits, which every
``podman`` call made through :func:`environment` reads (CONTAINERS_CONF).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from functools import cache
from pathlib import Path

# Limits asked for inside the container: what BentoML and uvicorn need, capped at the host's.
NOFILE = 65536
NPROC = 4096


@cache
def name() -> str:
    """ "docker" when a Docker daemon answers, else "podman"; raises if neither is there."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    raise RuntimeError(
        "no container engine: neither a Docker daemon (docker info failed) nor podman "
        "(Debian: apt-get install podman buildah runc fuse-overlayfs slirp4netns uidmap)"
    )


def _limit(which: int, wanted: int) -> int:
    hard = resource.getrlimit(which)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def containers_conf() -> str:
    """A containers.conf for this host: runc when it is installed, rlimits within its own."""
    nofile, nproc = _limit(resource.RLIMIT_NOFILE, NOFILE), _limit(resource.RLIMIT_NPROC, NPROC)
    lines = [
        "[containers]",
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]',
    ]
    if shutil.which("runc"):
        lines += ["", "[engine]", 'runtime = "runc"']
    return "\n".join(lines) + "\n"


def environment() -> dict[str, str]:
    """os.environ plus what the engine needs here (CONTAINERS_CONF for podman)."""
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    if name() == "podman" and "CONTAINERS_CONF" not in os.environ:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        conf = cache_dir / "model_bundle" / "containers.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        text = containers_conf()
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
        env["CONTAINERS_CONF"] = str(conf)
    return env


def run(*args: str, check: bool = True, timeout: float | None = None) -> str:
    """``ENGINE ARGS...``; its standard output, raising with its output if it fails."""
    result = subprocess.run(
        [name(), *args], capture_output=True, text=True, env=environment(), timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{name()} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def image_exists(image: str) -> bool:
    return (
        subprocess.run(
            [name(), "image", "inspect", image], capture_output=True, env=environment()
        ).returncode
        == 0
    )
