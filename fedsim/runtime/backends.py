"""Where WorkerHosts live: Ray actors (`ray`) or the driver process itself (`local`).

Both expose `call(method, *args)`, which runs a WorkerHost method on every host and returns the
results in host order, so the round loop in `driver.py` is the same for both.
"""
from __future__ import annotations

import logging
import os
import time

from fedsim.registry import ship_paths
from fedsim.runtime.host import WorkerHost, default_threads

log = logging.getLogger("fedsim.runtime")


def split(names: list[str], k: int) -> list[list[str]]:
    """Contiguous, balanced blocks: neighbours on a ring mostly share a host."""
    k = max(1, min(k, len(names)))
    base, extra = divmod(len(names), k)
    out, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append(names[start:start + size])
        start += size
    return out


class LocalBackend:
    """All nodes in this process, one host, threads only: for debugging and machines without Ray."""

    def __init__(self, cfg: dict, names: list[str], run_id: str) -> None:
        self.hosts = [WorkerHost(cfg, names, run_id, threads=None)]
        self.placement = {n: 0 for n in names}
        self.phases: dict[str, float] = {}
        self.description = f"local runtime: {len(names)} nodes in 1 process"

    def call(self, method: str, *args) -> list:
        return [getattr(h, method)(*args) for h in self.hosts]

    def close(self) -> None:
        for h in self.hosts:
            h.close()


class RayBackend:
    """N logical nodes on K Ray worker actors, each with its own gRPC server."""

    def __init__(self, cfg: dict, names: list[str], run_id: str) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        self.ray = ray
        rt = cfg["runtime"]
        self.started_ray = False
        # The user's plugin code travels with the job (Ray py_modules), to any machine of the cluster;
        # Ray takes local folders/files only at ray.init. A Ray the caller started already must see
        # the code itself: on one machine the workers import it from the config's plugin folders.
        modules = ship_paths(cfg)
        shipped = bool(modules) and not ray.is_initialized()
        t0 = time.perf_counter()
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if modules:
                kwargs["runtime_env"] = {"py_modules": modules}
            if rt["address"]:
                ray.init(address=rt["address"], **kwargs)
            else:
                # address="local": a private instance, never somebody else's `ray start` cluster on this host
                ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=rt["object_store_mb"] * 2**20, **kwargs)
            self.started_ray = True
        self.phases = {"ray": time.perf_counter() - t0}  # start-up phases the driver prints
        cpus, gpus = rt["cpus_per_worker"], rt["gpus_per_worker"]
        k = rt["workers"]
        if k == "auto":
            k = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus, 1e-9)))
        blocks = split(names, k)
        actor = ray.remote(WorkerHost).options(num_cpus=cpus, num_gpus=gpus, max_concurrency=2)
        self.hosts = [actor.remote(cfg, block, run_id, default_threads(cpus), import_paths=not shipped,
                                   single_host=len(blocks) == 1)
                      for block in blocks]
        self.placement = {n: i for i, block in enumerate(blocks) for n in block}
        self.description = (f"ray runtime: {len(names)} nodes on {len(blocks)} worker actors "
                            f"({cpus:g} CPU{', %g GPU' % gpus if gpus else ''} each)")
        try:
            self.call("address")  # surfaces construction errors (bad data, model) now
        except BaseException:
            self.close()
            raise

    def call(self, method: str, *args) -> list:
        refs = [self.ray.put(a) if isinstance(a, dict) and len(self.hosts) > 1 else a for a in args]
        return self.ray.get([getattr(h, method).remote(*refs) for h in self.hosts])

    def close(self) -> None:
        ray = self.ray
        try:
            ray.get([h.close.remote() for h in self.hosts], timeout=30)
        except Exception as exc:  # a dead actor cannot close; killing it below is enough
            log.debug("closing hosts: %s", exc)
        for h in self.hosts:
            ray.kill(h)
        if self.started_ray:
            ray.shutdown()


def make_backend(cfg: dict, names: list[str], run_id: str):
    return (RayBackend if cfg["runtime"]["kind"] == "ray" else LocalBackend)(cfg, names, run_id)
