"""Reading users' checkpoints: TorchScript, torch.export programs and state_dicts.

Import scripts only: a state_dict is read with ``weights_only=True``; TorchScript and
torch.export archives hold code and tensors, not pickled Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from models.artifact import save_artifact

WRAPPER_KEYS = ("state", "state_dict", "model")


@dataclass(frozen=True)
class Checkpoint:
    kind: Literal["torchscript", "exported", "state_dict"]
    program: Any = None  # ScriptModule or ExportedProgram
    state_dict: dict[str, torch.Tensor] | None = None

    def module(self) -> nn.Module:
        """The program as a callable module (not for a state_dict: that needs its class)."""
        if self.kind == "torchscript":
            return self.program.eval()
        if self.kind == "exported":
            return self.program.module()
        raise ValueError("a state_dict has no module of its own")


def read_checkpoint(path: Path) -> Checkpoint:
    """TorchScript, then torch.export, then a (possibly wrapped) state_dict of tensors."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return Checkpoint("torchscript", program=torch.jit.load(path, map_location="cpu"))
    except RuntimeError:
        pass
    try:
        return Checkpoint("exported", program=torch.export.load(path))
    except Exception:
        pass
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{path} is neither TorchScript, a torch.export program nor a state_dict: {error}"
        ) from None
    for key in WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state_dict of tensors")
    return Checkpoint(
        "state_dict", state_dict={k.removeprefix("module."): v for k, v in state.items()}
    )


def check_logits(model: nn.Module, probe: torch.Tensor, classes: int) -> None:
    """Run ``model`` once on ``probe``; refuse a failure, a wrong shape or non-finite output."""
    with torch.inference_mode():
        try:
            output = model(probe)
        except Exception as error:
            shape = list(probe.shape)
            raise ValueError(f"the model failed on a float32 {shape} probe: {error}") from None
    expected = (probe.shape[0], classes)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"the model must return logits of shape [N, {classes}]; "
            f"got {got} for N={probe.shape[0]}"
        )
    if not torch.isfinite(output).all():
        raise ValueError("the model returned NaN or infinity on the probe batch")


def save_imported(
    name: str, metadata: dict[str, Any], checkpoint: Checkpoint, network: nn.Module
) -> str:
    """Store an imported model as it came: program archives as such, else ``network``'s weights."""
    if checkpoint.kind == "torchscript":
        return save_artifact(name, metadata, torchscript=checkpoint.program)
    if checkpoint.kind == "exported":
        return save_artifact(name, metadata, exported=checkpoint.program)
    return save_artifact(name, metadata, state_dict=network.state_dict())


def how_to_serve(tag: str, served_name: str) -> str:
    """What to tell the user after an import: the setting that serves it (by default a
    runner serves ``<served_name>:latest``, which an import under that name becomes)."""
    variable = f"MODEL_BUNDLE_{served_name.upper()}_MODEL"
    return f"imported {tag}; serve it with {variable}={tag}"
