"""Multi-GPU training under torchrun: one process per GPU, gradients averaged by DDP.

torchrun tells each process where it sits through WORLD_SIZE, RANK and LOCAL_RANK. Without
them (a plain ``restore train``) no process group is created and every helper here returns
its single-process answer, so one-process training runs the very code it always did.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class LaunchEnv:
    """This process's place in a torchrun job; a plain run is rank 0 of 1."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1


def launch_env() -> LaunchEnv:
    """Read the variables torchrun sets (absent: a single process)."""
    return LaunchEnv(rank=int(os.environ.get("RANK", 0)), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                     world_size=int(os.environ.get("WORLD_SIZE", 1)))


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, plain ``cuda`` means this process's own GPU, ``cuda:LOCAL_RANK``.

    An explicit index is left alone; a single process keeps ``cuda`` as it always had.
    """
    env = launch_env()
    if env.world_size > 1 and device.type == "cuda" and device.index is None:
        return torch.device("cuda", env.local_rank)
    return device


def init(device: torch.device) -> bool:
    """Join the torchrun job (NCCL between GPUs, gloo on CPU); True when training is distributed."""
    if launch_env().world_size <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if dist.is_initialized():
        return True
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and all_gather_object use the current device
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"multi-process training runs on CUDA or the CPU, not {device.type}")
    dist.init_process_group(backend)
    return True


def cleanup() -> None:
    """Leave the process group so the process exits without NCCL's teardown warnings."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def enabled() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if enabled() else 0


def world_size() -> int:
    return dist.get_world_size() if enabled() else 1


def is_main() -> bool:
    """Rank 0 alone writes files and shows progress, so ranks never race on the same path."""
    return rank() == 0


def barrier() -> None:
    if enabled():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP without buffer broadcast: BatchNorm statistics stay per rank (or synced by SyncBatchNorm),
    and the discriminator's two forwards before its backward need no collective each.

    ``find_unused_parameters`` stays off (it costs a graph walk per step): the wrapped forwards'
    backward reaches every parameter: the generator's loss uses all its layers, and both of the
    discriminator's wrapped calls feed its loss. R1, whose backward misses the final bias, runs on
    the un-wrapped module (see the training loop).
    """
    # Newer PyTorch renamed the per-forward part of broadcast_buffers (the init-time sync it keeps
    # is harmless: every rank starts from the same weights).
    no_sync = ({"forward_sync_buffers": False}
               if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
               else {"broadcast_buffers": False})
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   **no_sync)


def all_gather(obj: object) -> list:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if not enabled():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def rank0_decides(flag: bool, device: torch.device) -> bool:
    """Rank 0's answer on every rank: decisions made on a clock (stop, checkpoint) must agree,
    or one rank waits forever in a collective the others skipped."""
    if not enabled():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on any (a NaN loss on one rank stops them all)."""
    if not enabled():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean_over_ranks(values: list[torch.Tensor], device: torch.device) -> list[float]:
    """Scalars averaged over ranks, so logged losses describe the whole global batch."""
    if not enabled():
        return [v.item() for v in values]
    t = torch.stack([v.detach().float().to(device) for v in values])
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in one flat all-reduce (for gradients DDP did not reduce)."""
    if not enabled():
        return
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view(g.shape))
        offset += g.numel()
