"""The few torch_xla calls the project makes, imported only when an XLA device is in use."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def device_loader(batches: Iterable, device: torch.device) -> Iterable:
    """Batches uploaded to `device` by a background thread, with a graph cut (mark_step) before each one."""
    import torch_xla.distributed.parallel_loader as pl

    return pl.MpDeviceLoader(batches, device)


def reduce_gradients(optimizer: torch.optim.Optimizer) -> None:
    """All-reduce gradients across replicas (a no-op for one process), before clipping and stepping."""
    import torch_xla.core.xla_model as xm

    xm.reduce_gradients(optimizer)


def manual_seed(seed: int) -> None:
    """Seed the XLA device's random number generator (dropout)."""
    import torch_xla

    torch_xla.manual_seed(seed)


def world_size() -> int:
    """Number of XLA processes in this run."""
    import torch_xla.runtime as xr

    return xr.world_size()


def init_process_group() -> None:
    """torch.distributed over XLA collectives, so split_by_node and all_reduce see every TPU process."""
    import torch.distributed as dist
    import torch_xla.distributed.xla_backend  # noqa: F401  registers the "xla" backend

    dist.init_process_group("xla", init_method="xla://")


def _run(index: int, job: Callable[[], None]) -> None:
    job()


def launch(job: Callable[[], None]) -> None:
    """Run job() in one process per XLA device with torch_xla's multi-process launcher (job must pickle)."""
    import torch_xla

    torch_xla.launch(_run, args=(job,))
