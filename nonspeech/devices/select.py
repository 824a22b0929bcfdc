"""Choose the torch device to train on ("auto" | "cpu" | "cuda" | "xla") and its autocast context.

torch_xla is imported only inside the XLA helpers, so the project never requires it.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from importlib.util import find_spec

import torch
from torch import Tensor

from nonspeech.devices import xla

DEVICE_NAMES = ("auto", "cpu", "cuda", "xla")


def _tpu_available() -> bool:
    """Whether torch_xla is installed and its PJRT runtime reports a TPU (an installed but broken torch_xla raises)."""
    if find_spec("torch_xla") is None:
        return False
    import torch_xla.runtime as xr

    return xr.device_type() == "TPU"


def _xla_device() -> torch.device:
    """The process's XLA device; RuntimeError when torch_xla is missing."""
    if find_spec("torch_xla") is None:
        raise RuntimeError("device 'xla' requested but torch_xla is not installed")
    import torch_xla

    return torch_xla.device()


def _cuda_device() -> torch.device:
    """The current CUDA device; RuntimeError saying whether torch lacks CUDA or no GPU is visible."""
    if not torch.cuda.is_available():
        cause = (
            f"this torch build ({torch.__version__}) has no CUDA support" if torch.version.cuda is None
            else "no CUDA GPU is visible"
        )
        raise RuntimeError(f"device 'cuda' requested but unavailable: {cause}")
    return torch.device("cuda")


def resolve_device(name: str) -> torch.device:
    """Map a device name to a torch.device; "auto" prefers an XLA TPU, then CUDA, then CPU."""
    if name == "auto":
        if _tpu_available():
            return _xla_device()
        return _cuda_device() if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        return _cuda_device()
    if name == "xla":
        return _xla_device()
    raise ValueError(f"unknown device {name!r}; valid: {', '.join(DEVICE_NAMES)}")


def autocast_context(device: torch.device, enabled: bool) -> AbstractContextManager:
    """bf16 autocast on CUDA when enabled; a no-op context on every other device or when disabled."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def on_device(batches: Iterable[tuple], device: torch.device) -> Iterable[tuple]:
    """Batches with their tensors on `device`: a background uploader on XLA, plain copies elsewhere."""
    if device.type == "xla":
        return xla.device_loader(batches, device)
    return (tuple(t.to(device, non_blocking=True) if isinstance(t, Tensor) else t for t in b) for b in batches)
