"""Multi-process training through torchrun: process group, rank helpers, gradient averaging.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `init_distributed()` joins the process group
(NCCL on CUDA, gloo on CPU). Gradients are averaged across ranks by `sync_gradients` after
each backward pass: one bucketed all_reduce, the reduction DistributedDataParallel performs.
ART, PGD and IG-Norm call the model several times per step and differentiate through input
gradients (double backprop), which DDP's reducer hooks do not support, so every method uses
this explicit path; natural training gets the same numbers as with DDP.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .cpu_malloc import tune_cpu_malloc

__all__ = ["DistInfo", "resolve_device", "init_distributed", "cleanup_distributed", "sync_gradients",
           "broadcast_parameters", "broadcast_buffers", "all_reduce_sum", "gather_objects", "barrier"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> cuda:<local_rank> when CUDA is available, else cpu; "cpu", "cuda", "cuda:N" as given
    (ValueError naming the option when CUDA is asked for but absent). A process whose work resolves
    to the CPU gets glibc's allocator tuned for tensor reuse (:func:`wsol.engine.cpu_malloc.tune_cpu_malloc`)."""
    if name == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    elif name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available on this machine")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as err:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}") from err
    if device.type == "cpu":
        tune_cpu_malloc()
    return device


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    log.info("rank %d of %d (local rank %d, backend %s)", rank, world, local, dist.get_backend())
    return DistInfo(rank, world, local)


def cleanup_distributed(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _broadcast(tensors, info: DistInfo) -> None:
    if info.enabled:
        for t in tensors:
            dist.broadcast(t.data, src=0)


def broadcast_parameters(model: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank (as DDP does at construction)."""
    _broadcast(list(model.parameters()) + list(model.buffers()), info)


def broadcast_buffers(model: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BN statistics) to every rank (DDP's broadcast_buffers, before each step)."""
    _broadcast(model.buffers(), info)


def sync_gradients(model: nn.Module, info: DistInfo) -> None:
    """Average .grad of every parameter across ranks (one flat all_reduce per dtype)."""
    if not info.enabled:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for g in grads:
        by_dtype.setdefault(g.dtype, []).append(g)
    for group in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in group])
        dist.all_reduce(flat)
        flat /= info.world_size
        offset = 0
        for g in group:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device | str = "cpu") -> list[float]:
    """Sum a list of floats over ranks (float64)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj, info: DistInfo) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank; [obj] in a single process."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
