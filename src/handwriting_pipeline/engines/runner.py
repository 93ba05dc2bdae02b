"""Run one engine over a set of forms: cache lookup, one read strategy per ``parallel`` kind,
a summary, and a row per form.

Every answer is written to the :class:`~handwriting_pipeline.datasets.cache.ResponseCache` the
moment it arrives (key: :meth:`Engine.cache_key` of the image's SHA-256), so a re-run or a run
resumed after a crash makes no call for a finished form. Failed forms are not cached (a re-run
tries them again); they get "None" values and their error, and the run goes on.

Answers stay :class:`EngineResult` objects inside a process; they become JSON only where they
leave it (worker processes, the cache).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256
from handwriting_pipeline.predictions import predictions_from_records

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """One form still to read: its name, image (None for engines that need none), cache key."""

    name: str
    image: Image.Image | None
    key: str | None


Done = tuple[Job, EngineResult]

# --------------------------------------------------------------------------- reading one form
_WORKER_ENGINE: Engine | None = None


def _init_worker(engine: Engine) -> None:
    """Worker process start: one thread per process for the numeric libraries."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    logging.disable(logging.INFO)  # start-up chatter of workers (model loading) would break the progress bar
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the main process, which ends the workers
    global _WORKER_ENGINE
    _WORKER_ENGINE = engine


def _worker_read(image: Image.Image, file_name: str) -> dict:
    """In a worker process: the answer as JSON (the process boundary)."""
    assert _WORKER_ENGINE is not None
    return _timed_read(_WORKER_ENGINE, image, file_name).to_json()


def _failure(err: BaseException) -> EngineResult:
    return EngineResult(error=f"{type(err).__name__}: {err}")


def _timed_read(engine: Engine, image: Image.Image | None, file_name: str) -> EngineResult:
    """``engine.read`` that never raises; ``seconds`` measured when the engine reports none
    (engines that read no image, i.e. replays, cost no time)."""
    start = time.perf_counter()
    try:
        result = engine.read(image, file_name)
    except Exception as err:  # noqa: BLE001 - engines should not raise; if one does, record it
        result = _failure(err)
    if not result.seconds and engine.needs_image:
        result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- cache lookup
def _load_image(images: Mapping[str, Image.Image], name: str) -> tuple[Image.Image | None, str | None]:
    try:
        image = images[name]
        image.load()
        return image, None
    except Exception as err:  # noqa: BLE001 - corrupt / missing image: this form fails, the run goes on
        return None, f"unreadable image {name}: {type(err).__name__}: {err}"


def _stop_pool(pool: ProcessPoolExecutor | ThreadPoolExecutor) -> None:
    """End a pool without waiting for its queued work (worker processes are terminated)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        try:
            process.terminate()
        except Exception:  # noqa: BLE001 - already gone
            pass


def lookup(engine: Engine, file_names: list[str], images: Mapping[str, Image.Image] | None,
           cache: Any) -> tuple[dict[str, EngineResult], list[Job]]:
    """Answers already known (cached, or unreadable images) and the jobs still to read."""
    known: dict[str, EngineResult] = {}
    jobs: list[Job] = []
    for name in file_names:
        if not engine.needs_image:
            jobs.append(Job(name, None, None))
            continue
        image, error = _load_image(images or {}, name)
        if image is None:
            logger.warning("%s: %s", engine.name, error)
            known[name] = EngineResult(error=error)
            continue
        key = engine.cache_key(image_sha256(image)) if cache is not None else None
        cached = cache.get(key) if key is not None else None
        try:
            known[name] = EngineResult.from_json(cached) if isinstance(cached, dict) else None
        except (TypeError, ValueError):  # an entry of another shape (e.g. an older version): recompute
            known[name] = None
        if known[name] is None:
            del known[name]
            jobs.append(Job(name, image, key))
    return known, jobs


# --------------------------------------------------------------------------- strategies
def read_serial(engine: Engine, jobs: list[Job], workers: int, batch_size: int) -> Iterator[Done]:
    """One form after the other in this process."""
    for job in jobs:
        yield job, _timed_read(engine, job.image, job.name)


def read_batches(engine: Engine, jobs: list[Job], workers: int, batch_size: int) -> Iterator[Done]:
    """``engine.read_batch`` on ``batch_size`` forms at a time (Donut); a failing batch fails its forms."""
    for i in range(0, len(jobs), batch_size):
        chunk = jobs[i:i + batch_size]
        try:
            batch = engine.read_batch([j.image for j in chunk], [j.name for j in chunk])
        except Exception as err:  # noqa: BLE001
            batch = [_failure(err) for _ in chunk]
        yield from zip(chunk, batch)


def _read_pool(pool: Executor, submit: Callable[[Job], Future], jobs: list[Job]) -> Iterator[tuple[Job, Any]]:
    """(job, answer) as they complete; the answer is the exception when the call raised."""
    try:
        futures = {submit(job): job for job in jobs}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as err:  # noqa: BLE001 - this form fails (or is retried), the run goes on
                yield futures[future], err
    except BaseException:  # Ctrl-C: stop now; every finished form is already in the cache
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def read_threads(engine: Engine, jobs: list[Job], workers: int, batch_size: int) -> Iterator[Done]:
    """API engines: ``workers`` threads share the engine (its client)."""
    pool = ThreadPoolExecutor(max_workers=workers)
    for job, answer in _read_pool(pool, lambda j: pool.submit(_timed_read, engine, j.image, j.name), jobs):
        yield job, answer if isinstance(answer, EngineResult) else _failure(answer)


def read_processes(engine: Engine, jobs: list[Job], workers: int, batch_size: int) -> Iterator[Done]:
    """CPU engines: ``workers`` spawned processes with a copy of the engine each. Forms whose
    worker died (e.g. killed, or a script without the ``__main__`` guard) are read here."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(engine,))
    broken = []
    for job, answer in _read_pool(pool, lambda j: pool.submit(_worker_read, j.image, j.name), jobs):
        if isinstance(answer, BrokenProcessPool):
            broken.append(job)
        else:
            yield job, EngineResult.from_json(answer) if isinstance(answer, dict) else _failure(answer)
    if broken:
        logger.warning("%s: worker processes failed; reading %d forms in this process instead", engine.name,
                       len(broken))
        yield from read_serial(engine, broken, 1, batch_size)


STRATEGIES: dict[str, Callable[[Engine, list[Job], int, int], Iterator[Done]]] = {
    "serial": read_serial, "batch": read_batches, "thread": read_threads, "process": read_processes,
}


def strategy(engine: Engine, n_jobs: int, workers: int) -> Callable[[Engine, list[Job], int, int], Iterator[Done]]:
    """The engine's ``parallel`` kind; serial when there is only one worker or one form."""
    mode = engine.parallel
    if mode not in STRATEGIES:
        raise ValueError(f"{engine.name}: unknown parallel kind '{mode}'; choose from {sorted(STRATEGIES)}")
    if mode in ("thread", "process") and (workers <= 1 or n_jobs <= 1):
        return read_serial
    return STRATEGIES[mode]


# --------------------------------------------------------------------------- summary
def summarise(name: str, results: Mapping[str, EngineResult], n_cached: int, elapsed: float) -> None:
    """One log line per run, and one warning with the first error when forms failed."""
    total = len(results)
    failed = [r.error for r in results.values() if r.error]
    logger.info("%s: %d forms in %.1f s (%d read, %d from cache), %d failed", name, total, elapsed,
                total - n_cached, n_cached, len(failed))
    if failed:
        logger.warning("%s: %d of %d forms failed (values 'None', see the 'error' column); first error: %s",
                       name, len(failed), total, failed[0])


# --------------------------------------------------------------------------- the run
def run_engine(engine: Engine, file_names: list[str], images: Mapping[str, Image.Image] | None,
               cache: Any = None, workers: int = 1, progress: bool = True,
               batch_size: int | None = None, keys: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read every form with ``engine``; returns the predictions table (``file_names`` order).

    Args:
        engine: a ready engine (``check_ready`` already passed).
        file_names: forms to read.
        images: file_name -> PIL image (lazy mapping); unused by engines with ``needs_image = False``.
        cache: a ResponseCache (or None: no caching; engines with ``cacheable = False`` get None).
        workers: parallel workers for ``parallel = "process"`` / ``"thread"`` engines.
        progress: show a tqdm progress bar.
        batch_size: forms per ``read_batch`` call of ``parallel = "batch"`` engines (default: the
            engine's ``batch_size``).
        keys: the form's fields, the table's value columns (default: the HSF form's four).
    """
    start = time.perf_counter()
    results, jobs = lookup(engine, file_names, images, cache if engine.cacheable else None)
    n_cached = sum(1 for r in results.values() if r.error is None)
    size = int(batch_size or getattr(engine, "batch_size", 8) or 8)
    read = strategy(engine, len(jobs), int(workers))
    with tqdm(total=len(file_names), initial=len(results), desc=f"extract {engine.name}", unit="form",
              disable=not progress) as bar:
        for job, result in read(engine, jobs, int(workers), size):
            if job.key is not None and result.error is None:
                cache.put(job.key, result.to_json())
            results[job.name] = result
            bar.update()
    summarise(engine.name, {n: results[n] for n in file_names}, n_cached, time.perf_counter() - start)
    return predictions_from_records((results[name].to_record(name) for name in file_names), *([keys] if keys else []))
