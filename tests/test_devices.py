"""Device resolution without requiring CUDA or torch_xla; XLA branches use a stand-in module."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
import warnings
from contextlib import nullcontext

import pytest
import torch

from nonspeech.devices.select import autocast_context, resolve_device


@pytest.fixture
def no_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make torch_xla unimportable and CUDA unavailable, whatever this machine has."""
    monkeypatch.setitem(sys.modules, "torch_xla", None)
    monkeypatch.setitem(sys.modules, "torch_xla.runtime", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fake_torch_xla(monkeypatch: pytest.MonkeyPatch, device_type: str) -> None:
    """Install a stand-in torch_xla whose PJRT runtime reports `device_type`."""
    runtime = types.ModuleType("torch_xla.runtime")
    runtime.device_type = lambda: device_type
    module = types.ModuleType("torch_xla")
    module.__spec__ = importlib.machinery.ModuleSpec("torch_xla", None)  # installed, as find_spec sees it
    module.runtime = runtime
    module.device = lambda: torch.device("xla", 0)
    monkeypatch.setitem(sys.modules, "torch_xla", module)
    monkeypatch.setitem(sys.modules, "torch_xla.runtime", runtime)


def test_cpu_resolves() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_is_cpu_on_this_machine() -> None:
    if torch.cuda.is_available() or importlib.util.find_spec("torch_xla") is not None:
        pytest.skip("this machine has an accelerator stack")
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_is_cpu_without_accelerators(no_accelerators: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_unavailable_raises_clearly(no_accelerators: None) -> None:
    with pytest.raises(RuntimeError, match="device 'cuda' requested but unavailable: .*(no CUDA support|no CUDA GPU)"):
        resolve_device("cuda")


def test_xla_without_torch_xla_raises_clearly() -> None:
    if importlib.util.find_spec("torch_xla") is not None:
        pytest.skip("torch_xla is installed")
    with pytest.raises(RuntimeError, match="device 'xla' requested but torch_xla is not installed"):
        resolve_device("xla")


def test_auto_prefers_a_tpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch_xla(monkeypatch, "TPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("xla", 0)


def test_auto_skips_xla_without_tpu_and_takes_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch_xla(monkeypatch, "CPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("xla") == torch.device("xla", 0)  # asked for explicitly, any PJRT device will do


def test_unknown_device_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda, xla"):
        resolve_device("tpu")


def test_autocast_is_bf16_on_cuda_only() -> None:
    assert isinstance(autocast_context(torch.device("cpu"), True), nullcontext)
    assert isinstance(autocast_context(torch.device("xla", 0), True), nullcontext)
    assert isinstance(autocast_context(torch.device("cuda"), False), nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CPU-only torch warns that it disables CUDA autocast
        ctx = autocast_context(torch.device("cuda"), True)
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
