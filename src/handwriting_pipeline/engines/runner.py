"""Run one engine over a set of forms: cache first, then parallel reads, a row per form.

Every answer is written to the :class:`~handwriting_pipeline.datasets.cache.ResponseCache` the
moment it arrives (key: :meth:`Engine.cache_key` of the image's SHA-256), so a re-run or a run
resumed after a crash makes no call for a finished form. Failed forms are not cached (a re-run
tries them again); they get "None" values and their error, and the run goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256
from handwriting_pipeline.predictions import predictions_from_records

logger = logging.getLogger(__name__)

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
    assert _WORKER_ENGINE is not None
    return _WORKER_ENGINE.read(image, file_name).to_json()


def _timed_read(engine: Engine, image: Image.Image, file_name: str) -> dict:
    start = time.perf_counter()
    try:
        result = engine.read(image, file_name)
    except Exception as err:  # noqa: BLE001 - engines should not raise; if one does, record it
        result = EngineResult(error=f"{type(err).__name__}: {err}")
    if not result.seconds:
        result.seconds = time.perf_counter() - start
    return result.to_json()


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


def run_engine(engine: Engine, file_names: list[str], images: Mapping[str, Image.Image] | None,
               cache: Any = None, workers: int = 1, progress: bool = True, batch_size: int | None = None) -> pd.DataFrame:
    """Read every form with ``engine``; returns the predictions table (``file_names`` order).

    Args:
        engine: a ready engine (``check_ready`` already passed).
        file_names: forms to read.
        images: file_name -> PIL image (lazy mapping); unused by engines with ``needs_image = False``.
        cache: a ResponseCache (or None: no caching).
        workers: parallel workers; processes for CPU engines (``parallel = "process"``), threads for
            API engines (``parallel = "thread"``); engines that batch get ``batch_size`` forms per call.
        progress: show a tqdm progress bar.
        batch_size: when set, call ``engine.read_batch`` with this many forms (Donut).
    """
    label = getattr(engine, "name", "engine")
    results: dict[str, EngineResult] = {}
    pending: list[tuple[str, Image.Image, str]] = []  # name, image, cache key
    n_cached = 0
    bar = tqdm(total=len(file_names), desc=f"extract {label}", unit="form", disable=not progress)
    start = time.perf_counter()
    if not getattr(engine, "needs_image", True):
        for name in file_names:
            results[name] = engine.read(None, name)
            bar.update()
    else:
        for name in file_names:
            image, error = _load_image(images or {}, name)
            if image is None:
                logger.warning("%s: %s", label, error)
                results[name] = EngineResult(error=error)
                bar.update()
                continue
            key = engine.cache_key(image_sha256(image))
            cached = cache.get(key) if cache is not None else None
            try:
                cached_result = EngineResult.from_json(cached) if isinstance(cached, dict) else None
            except (TypeError, ValueError):  # an entry of another shape: recompute
                cached_result = None
            if cached_result is not None:
                results[name] = cached_result
                n_cached += 1
                bar.update()
            else:
                pending.append((name, image, key))

    def store(name: str, key: str, data: dict) -> None:
        result = EngineResult.from_json(data)
        if cache is not None and result.error is None:
            cache.put(key, result.to_json())
        results[name] = result
        bar.update()

    mode = getattr(engine, "parallel", "process")
    if pending and batch_size:
        for i in range(0, len(pending), batch_size):
            chunk = pending[i:i + batch_size]
            try:
                batch = engine.read_batch([c[1] for c in chunk], [c[0] for c in chunk])
            except Exception as err:  # noqa: BLE001
                batch = [EngineResult(error=f"{type(err).__name__}: {err}") for _ in chunk]
            for (name, _, key), result in zip(chunk, batch):
                store(name, key, result.to_json())
    elif pending and workers > 1 and len(pending) > 1 and mode in ("process", "thread"):
        if mode == "process":
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(engine,))
            submit = lambda name, image: pool.submit(_worker_read, image, name)  # noqa: E731
        else:
            pool = ThreadPoolExecutor(max_workers=workers)
            submit = lambda name, image: pool.submit(_timed_read, engine, image, name)  # noqa: E731
        broken: list[tuple[str, Image.Image, str]] = []
        try:
            futures: dict[Future, tuple[str, Image.Image, str]] = {
                submit(name, image): (name, image, key) for name, image, key in pending}
            for future in as_completed(futures):
                name, image, key = futures[future]
                try:
                    data = future.result()
                except BrokenProcessPool:
                    broken.append((name, image, key))
                    continue
                except Exception as err:  # noqa: BLE001 - this form fails, the run goes on
                    data = EngineResult(error=f"{type(err).__name__}: {err}").to_json()
                store(name, key, data)
        except BaseException:  # Ctrl-C: stop now; every finished form is already in the cache
            bar.close()
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
        if broken:  # e.g. a worker killed, or a script without the `if __name__ == "__main__":` guard
            logger.warning("%s: worker processes failed; reading %d forms in this process instead", label, len(broken))
            for name, image, key in broken:
                store(name, key, _timed_read(engine, image, name))
    else:
        for name, image, key in pending:
            store(name, key, _timed_read(engine, image, name))
    bar.close()

    elapsed = time.perf_counter() - start
    failed = sum(1 for r in results.values() if r.error)
    logger.info("%s: %d forms in %.1f s (%d read, %d from cache), %d failed", label, len(file_names), elapsed,
                len(file_names) - n_cached, n_cached, failed)
    if failed:
        first = next(r.error for r in results.values() if r.error)
        logger.warning("%s: %d of %d forms failed (values 'None', see the 'error' column); first error: %s",
                       label, failed, len(file_names), first)
    return predictions_from_records(results[name].to_record(name) for name in file_names)
