"""Params blocks that several stages read (see :class:`secmine.stages.contract.SharedParams`).

``compute``: where the stages that scale out (``keywords``, ``classify``) run -- in this process
(``local``, the default) or as Ray Data pipelines on a Ray cluster (``ray``, :mod:`secmine.compute`).
Both give the same outputs, byte for byte (docs/ray.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from secmine.stages.contract import SharedParams


@dataclass(frozen=True)
class Compute(SharedParams):
    stage = "compute"
    engine: Literal["local", "ray"] = "local"
    # ray only: "" = start a local cluster on 127.0.0.1 for the run; "auto" = the cluster this machine
    # belongs to (`ray start`); or a head node's address (host:6379, or ray://host:10001 for Ray Client)
    ray_address: str = ""
    local_cpus: int = 0  # CPUs of the local cluster that "" starts (0 = every core)
    batch_size: int = 1000  # threads per Ray Data batch
    actors: int = 2  # classify: model actors (each loads the model once)
    gpus_per_actor: float = 1.0  # classify, when the cluster has GPUs (0 = CPU actors only)
