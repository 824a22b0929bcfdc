"""Multi-process training: join the launcher's process group and sum tensors across ranks.

torchrun (gloo on CPU, nccl on CUDA) and torch_xla's launcher set up the processes; this module only joins
them. Without a launcher every process is a world of one and every call here is a no-op.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel

from nonspeech.devices import xla


@dataclass(frozen=True)
class World:
    """This process's rank among `size` training processes."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes outputs (rank 0)."""
        return self.rank == 0


def join_world(device: torch.device) -> World:
    """Join the process group of torchrun or torch_xla's launcher when one started this process."""
    if not dist.is_initialized():
        if device.type == "xla":
            if xla.world_size() > 1:
                xla.init_process_group()
        elif dist.is_torchelastic_launched():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size())


def leave_world(finished: bool) -> None:
    """Tear the process group down at the end of a run: when this rank finished, after a barrier, so that no rank
    closes its connections while another still uses them (gloo aborts a rank that sees that); after an error, at
    once (the other ranks may never reach a barrier)."""
    if dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device, world: World) -> torch.device:
    """On CUDA, this rank's own GPU (ranks are packed onto hosts in order, as torchrun does)."""
    if device.type != "cuda" or world.size == 1:
        return device
    local = torch.device("cuda", world.rank % torch.cuda.device_count())
    torch.cuda.set_device(local)
    return local


def data_parallel(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the model under torchrun; XLA reduces gradients in the step instead."""
    if world.size == 1 or device.type == "xla":
        return model
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def uneven_inputs(module: nn.Module) -> AbstractContextManager:
    """Let ranks run out of batches at different steps without hanging DDP's gradient all-reduce."""
    return Join([module]) if isinstance(module, DistributedDataParallel) else nullcontext()


def sync_buffers(model: nn.Module, world: World) -> None:
    """Give every rank rank 0's buffers (BatchNorm running stats), so all ranks evaluate the model that is saved."""
    if world.size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def all_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The tensor summed over every rank (in place), unchanged in a world of one."""
    if world.size > 1:
        dist.all_reduce(tensor)
    return tensor
