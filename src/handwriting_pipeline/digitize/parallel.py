"""Where the partitions of a digitize run are read: this process, a local pool of worker
processes, or a Dask ``distributed`` cluster - with the same records in the same order.

Every worker reads *whole* partitions end to end (open, register, crop, every engine, the
ensemble, normalization, review crops) with its own engines, built once per worker process from
the plan's specs (models are loaded where they are used, never pickled: a plan travels without
its engines and without loaded model bundles). The main process only writes the records.

* :func:`partition_size` sizes the partitions by the number of workers: at least
  ``per_worker`` partitions per worker (so a short run keeps every worker busy), at most
  ``digitize.partition_size`` files (memory);
* :func:`local_pool` - ``digitize.workers`` spawned processes (one ONNX Runtime / BLAS thread
  each, engines built in the pool's initializer);
* :func:`dask_partitions` - a Dask cluster (``digitize.dask.scheduler`` or a ``LocalCluster`` of
  ``digitize.dask.n_workers``): the plan is scattered once, each worker keeps its engines in a
  module-level slot keyed by the plan's token;

both keep a bounded window of partitions in flight and yield their results in input order, so
memory stays flat in the number of inputs.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields, replace
from typing import Any

# a digitize.core.DigitizePlan; not imported, not even for type checking: core imports this module
DigitizePlan = Any

logger = logging.getLogger(__name__)

Records = list[dict[str, Any]]
#: reads one partition: (plan, file paths) -> records (``digitize.core.read_partition``; handed
#: in, so this module does not import the core that calls it)
ReadPartition = Callable[[DigitizePlan, list[str]], Records]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def partition_size(n_inputs: int, workers: int, largest: int, per_worker: int = 4) -> int:
    """Files per partition: ``per_worker`` partitions per worker or more, ``largest`` at most."""
    if n_inputs <= 0:
        return max(1, largest)
    return max(1, min(int(largest), math.ceil(n_inputs / (max(1, workers) * per_worker))))


def chunks(paths: Iterable[str], size: int) -> Iterator[list[str]]:
    """``paths`` in lists of ``size`` (lazily: the input is never listed twice)."""
    part: list[str] = []
    for path in paths:
        part.append(path)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


def one_thread_settings(plan: DigitizePlan) -> DigitizePlan:
    """The plan as a worker runs it: engines read in turn (``workers=1``) with one compute thread
    each (an engine's ``threads`` setting, where its settings have one), no loaded engines."""
    specs = []
    for spec in plan.specs:
        settings = dict(spec.settings)
        settings_class = getattr(spec.cls, "settings_class", None)
        if settings_class is not None and "threads" in {f.name for f in fields(settings_class)}:
            settings["threads"] = 1
        specs.append(replace(spec, settings=settings))
    return replace(plan, specs=specs, workers=1, progress=False, _engines=None)


def _one_thread_process() -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a core dependency
        pass


def in_order(submit: Callable[[list[str]], Future], parts: Iterator[list[str]], window: int) -> Iterator[Records]:
    """Submit partitions with at most ``window`` in flight; yield their records in input order."""
    pending: deque[Future] = deque()
    for part in parts:
        pending.append(submit(part))
        if len(pending) >= window:
            break
    while pending:
        yield pending.popleft().result()
        nxt = next(parts, None)
        if nxt is not None:
            pending.append(submit(nxt))


# --------------------------------------------------------------------------- this process
def serial(plan: DigitizePlan, read: ReadPartition, paths: Iterable[str], size: int) -> Iterator[Records]:
    for part in chunks(paths, size):
        yield read(plan, part)


# --------------------------------------------------------------------------- local pool
_POOL: tuple[DigitizePlan, ReadPartition] | None = None


def _init_pool_worker(plan: DigitizePlan, read: ReadPartition) -> None:
    """Pool worker start: one compute thread, engines built now (once per worker)."""
    _one_thread_process()
    logging.disable(logging.WARNING)  # model loading chatter of workers would break the progress bar
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's
    global _POOL
    _POOL = (plan, read)
    plan.engines()


def _pool_partition(paths: list[str]) -> Records:
    assert _POOL is not None
    plan, read = _POOL
    return read(plan, paths)


def local_pool(plan: DigitizePlan, read: ReadPartition, paths: Iterable[str], size: int,
               workers: int) -> Iterator[Records]:
    """Partitions read by ``workers`` spawned processes, in input order. Partitions whose worker
    died (killed, or a script without the ``__main__`` guard) are read in this process."""
    worker_plan = one_thread_settings(plan)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_pool_worker, initargs=(worker_plan, read))
    parts, pending = chunks(paths, size), deque()
    broken = False

    def fill() -> None:
        while len(pending) < 2 * workers:
            part = next(parts, None)
            if part is None:
                return
            pending.append((part, None if broken else pool.submit(_pool_partition, part)))

    try:
        fill()
        while pending:
            part, future = pending.popleft()
            try:
                records = read(worker_plan, part) if future is None else future.result()
            except BrokenProcessPool:
                logger.warning("digitize: worker processes failed; reading the remaining partitions in this process")
                broken = True
                pending = deque((p, None) for p, _ in pending)
                records = read(worker_plan, part)
            yield records
            fill()
    except BaseException:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=not broken, cancel_futures=broken)


# --------------------------------------------------------------------------- Dask
_WORKER_PLANS: dict[str, DigitizePlan] = {}


def _dask_partition(plan: DigitizePlan, read: ReadPartition, paths: list[str]) -> Records:
    """On a Dask worker: the worker's own copy of the plan (engines built once per worker)."""
    if plan.token not in _WORKER_PLANS:
        _one_thread_process()
        _WORKER_PLANS[plan.token] = plan
    return read(_WORKER_PLANS[plan.token], paths)


def _warm_up(plan: DigitizePlan) -> int:
    """On every Dask worker before the first partition: build the engines (model loading is not
    timed against the first partition, and a worker that cannot load them fails early)."""
    _one_thread_process()
    mine = _WORKER_PLANS.setdefault(plan.token, plan)
    return len(mine.engines())


def dask_client(settings: dict[str, Any]) -> tuple[Any, Any]:
    """``(client, cluster or None)`` for ``digitize.dask`` settings."""
    from distributed import Client, LocalCluster

    if settings.get("scheduler"):
        return Client(settings["scheduler"], timeout=settings.get("timeout", "30s")), None
    cluster = LocalCluster(n_workers=int(settings["n_workers"]), threads_per_worker=1, processes=True,
                           host=settings.get("host", "127.0.0.1"), dashboard_address=settings.get("dashboard", None),
                           memory_limit=settings.get("memory_limit", "auto"))
    return Client(cluster), cluster


def dask_workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def dask_partitions(plan: DigitizePlan, read: ReadPartition, paths: Iterable[str],
                    n_inputs: int) -> Iterator[Records]:
    """Partitions mapped over a Dask cluster, results in input order (a bounded window)."""
    settings = plan.dask
    client, cluster = dask_client(settings)
    try:
        n_workers = dask_workers(client)
        size = partition_size(n_inputs, n_workers, plan.partition_size)
        logger.info("digitize: %d partitions of up to %d files on %s (%d workers)", math.ceil(n_inputs / size), size,
                    settings.get("scheduler") or "a local cluster", n_workers)
        worker_plan = one_thread_settings(plan)
        [shared] = client.scatter([worker_plan], broadcast=True)
        client.run(_warm_up, worker_plan)
        window = int(settings.get("in_flight") or 2 * n_workers)
        yield from in_order(lambda part: client.submit(_dask_partition, shared, read, part, pure=False),
                            chunks(paths, size), window)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def partitions(plan: DigitizePlan, read: ReadPartition, paths: Iterable[str], n_inputs: int) -> Iterator[Records]:
    """The records of every partition (``read(plan, paths)``), in input order, read where the
    plan says."""
    if plan.dask.get("scheduler") or plan.dask.get("n_workers"):
        return dask_partitions(plan, read, paths, n_inputs)
    workers = max(1, int(plan.workers))
    if workers == 1 or n_inputs <= 1 or any(spec.cls.parallel == "thread" for spec in plan.specs):
        # API engines wait on the network: their own threads per partition beat a process pool
        return serial(plan, read, paths, plan.partition_size)
    return local_pool(plan, read, paths, partition_size(n_inputs, workers, plan.partition_size), workers)
