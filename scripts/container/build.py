"""Build the bundle's image from its Bento with ``bentoml containerize``.

    python -m scripts.container.build [--torch-backend cpu] [--base-image IMAGE] [--tag TAG]
                                      [--bento TAG] [--dockerfile]      (make container)

Settings (each also an environment variable, as ``make container`` passes them):

- ``TORCH_BACKEND``: ``cpu`` (default) or a uv ``--torch-backend`` value such as ``cu128`` for
  the CUDA image; the image is tagged ``model_bundle:<backend>``.
- ``BASE_IMAGE``: the image to build on. Default: BentoML's, ``python:3.11-slim``; where no
  container registry answers, a base made from Debian's packages
  (scripts/container/base_image.sh, cached in the engine's store).
- ``TORCH_WHEELS``: a directory holding the torch wheel to install, for where PyTorch's index
  is out of reach. Default for the CPU image: pip's own find-links directories, when one holds
  the CPU wheel of the pinned torch (as on our machines); otherwise PyTorch's index.
- ``HOST_CA_BUNDLE``: the CA bundle that package downloads during the build trust (a
  TLS-inspecting proxy). Default: ``SSL_CERT_FILE``, else the system bundle. It is handed to
  the build as a secret, so it is never part of the image.

Prints what was built: seconds, image size, its largest layers (JSON). ``--dockerfile``
prints the Dockerfile and the engine arguments instead of building.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from pathlib import Path

from scripts.container import engine

ROOT = Path(__file__).resolve().parents[2]
BENTOML_BASE_IMAGE = "python:3.11-slim"  # BentoML's default for Python 3.11 on Debian
BASE_SCRIPT = ROOT / "scripts" / "container" / "base_image.sh"
# BentoML 1.4 renders a Bento's dockerfile_template from a copy of the Bento in a temporary
# directory, and refuses to read a template outside the current directory: containerize runs
# from the directory those copies are made in.
TEMPLATE_CWD = tempfile.gettempdir()
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's, and others'


def pinned_torch() -> str:
    """The torch version requirements.txt pins."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(r"^torch==([^\s#]+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError("requirements.txt pins no torch version")
    return match.group(1)


def pip_find_links() -> list[Path]:
    """The directories pip looks in for wheels (PIP_FIND_LINKS and pip's config files)."""
    values = os.environ.get("PIP_FIND_LINKS", "").split()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            values += value.strip().strip("'\"").split()
    return [Path(v.removeprefix("file://")) for v in values if not v.startswith("http")]


def local_torch_wheel(backend: str) -> Path | None:
    """The CPU wheel of the pinned torch in a directory pip looks in, for this Python."""
    if backend != "cpu":
        return None
    pattern = f"torch-{pinned_torch()}+cpu-cp311-cp311-*.whl"  # the image runs Python 3.11
    for directory in pip_find_links():
        if directory.is_dir():
            found = sorted(directory.glob(pattern))
            if found:
                return found[0]
    return None


def ca_bundle() -> Path | None:
    for candidate in (os.environ.get("HOST_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None


def base_image(requested: str | None) -> str:
    """``requested``; else BentoML's base when it can be had, else our Debian-made one."""
    if requested:
        return requested
    if engine.image_exists(BENTOML_BASE_IMAGE):
        return BENTOML_BASE_IMAGE
    pulled = subprocess.run(
        [engine.name(), "pull", "--quiet", BENTOML_BASE_IMAGE],
        capture_output=True,
        text=True,
        env=engine.environment(),
        timeout=600,
    )
    if pulled.returncode == 0:
        return BENTOML_BASE_IMAGE
    print(
        f"build: {BENTOML_BASE_IMAGE} cannot be pulled ({pulled.stderr.strip()[-200:]}); "
        "building on a base made from Debian's packages",
        file=sys.stderr,
    )
    made = subprocess.run(
        [str(BASE_SCRIPT), engine.name()],
        capture_output=True,
        text=True,
        env=engine.environment(),
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"{BASE_SCRIPT.name} failed:\n{made.stderr[-3000:]}")
    return made.stdout.strip().splitlines()[-1]


@contextmanager
def build_options(backend: str, base: str) -> Iterator[list[str]]:
    """``--opt`` arguments of ``bentoml containerize``; temporary files live until exit."""
    options = [f"build-arg=BASE_IMAGE={base}", f"build-arg=TORCH_BACKEND={backend}"]
    with tempfile.TemporaryDirectory(prefix="model_bundle-build-") as work:
        wheels_dir = os.environ.get("TORCH_WHEELS")
        if not wheels_dir:
            wheel = local_torch_wheel(backend)
            if wheel is not None:  # a directory holding only that wheel
                wheels_dir = str(Path(work, "torch-wheels"))
                Path(wheels_dir).mkdir()
                try:
                    os.link(wheel, Path(wheels_dir, wheel.name))
                except OSError:
                    shutil.copy2(wheel, wheels_dir)
        if wheels_dir:
            options.append(f"build-context=torch-wheels={Path(wheels_dir).resolve()}")
        bundle = ca_bundle()
        # Always a secret, empty when there is no bundle: the Dockerfile mounts it either way.
        secret = bundle if bundle is not None else Path(work, "no-ca")
        if bundle is None:
            secret.write_text("")
        options.append(f"secret=id=host-ca,src={secret}")
        yield options


def largest_layers(image: str, count: int = 5) -> list[dict[str, object]]:
    history = json.loads(engine.run("history", "--no-trunc", "--format", "json", image))
    layers = sorted(history, key=lambda layer: layer.get("size", 0), reverse=True)[:count]
    return [
        {"mb": round(layer.get("size", 0) / 1e6, 1), "step": step(layer.get("CreatedBy", ""))}
        for layer in layers
    ]


def step(created_by: str) -> str:
    """A layer's Dockerfile step, without the build arguments the engine prefixes it with."""
    text = " ".join(created_by.split())
    text = text.split("/bin/sh -c ", 1)[-1].removeprefix("#(nop) ")
    text = re.sub(r"--mount=\S+ ", "", text)
    return text[:100]


def image_size_mb(image: str) -> float:
    return round(int(engine.run("image", "inspect", "--format", "{{.Size}}", image)) / 1e6, 1)


def dockerfile(bento: str) -> str:
    """The Dockerfile ``bentoml containerize`` builds ``bento`` with (engine-independent)."""
    import bentoml
    from bentoml._internal.container import construct_containerfile

    with (
        chdir(tempfile.gettempdir()),
        construct_containerfile(bentoml.get(bento), enable_buildkit=True) as (_, path),
    ):
        return Path(path).read_text()


def build(
    backend: str = "cpu",
    base: str | None = None,
    tag: str | None = None,
    bento: str = "model_bundle:latest",
) -> dict[str, object]:
    tag = tag or f"model_bundle:{backend}"
    started = time.monotonic()
    chosen_base = base_image(base)
    base_s = time.monotonic() - started
    started = time.monotonic()
    with build_options(backend, chosen_base) as options:
        command = [
            str(Path(sys.executable).parent / "bentoml"),
            "containerize",
            bento,
            "--backend",
            engine.name(),
            "--image-tag",
            tag,
            *(argument for option in options for argument in ("--opt", option)),
        ]
        result = subprocess.run(
            command, cwd=TEMPLATE_CWD, env=engine.environment(), capture_output=True, text=True
        )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"bentoml containerize failed:\n{output[-6000:]}")
    return {
        "image": tag,
        "base_image": chosen_base,
        "engine": engine.name(),
        "base_s": round(base_s, 1),  # making the base image, when it had to be made
        "build_s": round(seconds, 1),
        "cached_steps": output.count("Using cache"),
        "size_mb": image_size_mb(tag),
        "largest_layers": largest_layers(tag),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-backend", default=os.environ.get("TORCH_BACKEND") or "cpu")
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE") or None)
    parser.add_argument("--tag", default=None, help="default: model_bundle:<torch backend>")
    parser.add_argument("--bento", default="model_bundle:latest")
    parser.add_argument(
        "--dockerfile", action="store_true", help="print the Dockerfile and engine options only"
    )
    args = parser.parse_args()
    if args.dockerfile:
        print(dockerfile(args.bento))
        base = args.base_image or BENTOML_BASE_IMAGE
        with build_options(args.torch_backend, base) as options:
            print("# bentoml containerize options:", " ".join(f"--opt {o}" for o in options))
        return
    print(json.dumps(build(args.torch_backend, args.base_image, args.tag, args.bento), indent=2))


if __name__ == "__main__":
    main()
