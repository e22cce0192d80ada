"""Single-process or torchrun: one small object that hides which, for the training loop.

Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK set) it joins the process group (nccl on CUDA, gloo on CPU),
wraps the model in DistributedDataParallel and all-reduces metrics; alone, every call is the identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import Tensor, nn


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        if not self.active:
            return module
        ids = [self.local_rank] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def all_reduce_sum(self, t: Tensor) -> Tensor:
        if not self.active:
            return t
        t = t.to(self.device) if td.get_backend() == "nccl" else t.cpu()
        td.all_reduce(t)
        return t.cpu()

    def all_reduce_mean(self, t: Tensor) -> Tensor:
        return self.all_reduce_sum(t.detach().float().clone()) / self.world

    def all_gather_str(self, s: str) -> list[str]:
        if not self.active:
            return [s]
        out: list = [None] * self.world
        td.all_gather_object(out, s)
        return out

    def close(self) -> None:
        if self.active and td.is_initialized():
            td.barrier()
            td.destroy_process_group()


def setup_dist() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        td.init_process_group(backend="nccl" if cuda else "gloo")
        if not cuda and "OMP_NUM_THREADS" not in os.environ:
            # N processes on one CPU: split the cores instead of oversubscribing them N times
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Dist(rank, world, local_rank, device)
