"""What the synthetic generators share: form ``i`` as ``(image, fields)``, its file name, and the
forms ``start .. start+n-1`` streamed in index order, rendered in a process pool when asked.

A generator subclasses :class:`FormStream`, defines ``render(i)`` (an object with ``image`` and
``fields``) and pickles as what rebuilds it (``__getstate__`` / ``__setstate__``): each pool worker
gets such a copy once and renders its share; the output equals ``sample(i)``.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

from PIL import Image


class FormStream:
    """``sample``, ``file_name`` and ``generate`` over a subclass's ``render(i)``; ``options``
    holds ``file_prefix`` and ``seed`` the generator's seed."""

    seed: int
    options: dict[str, Any]

    def render(self, i: int) -> Any:  # pragma: no cover - every generator defines it
        raise NotImplementedError

    def sample(self, i: int) -> tuple[Image.Image, dict[str, str]]:
        """Form number ``i``: (PIL image, {field name: value as written})."""
        form = self.render(i)
        return form.image, form.fields

    def file_name(self, i: int) -> str:
        """File name of form ``i`` (``<file_prefix>_<seed>_<i:07d>.png``)."""
        return f"{self.options['file_prefix']}_{self.seed}_{int(i):07d}.png"

    def generate(self, n: int, start: int = 0, workers: int = 2) -> Iterator[tuple[str, Image.Image, dict[str, str]]]:
        """Stream ``(file_name, image, fields)`` for forms ``start .. start+n-1`` in index order.

        ``workers > 1`` renders in a multiprocessing pool (each worker rebuilds this generator
        from its pickled state); the output equals ``sample(i)``.
        """
        indices = range(int(start), int(start) + int(n))
        if workers is None or workers <= 1 or n <= 1:
            for i in indices:
                image, fields = self.sample(i)
                yield self.file_name(i), image, fields
            return
        # spawn, not fork: forking a process that already runs torch / onnxruntime threads can
        # deadlock the children (seen when the test suite had loaded torch before this ran)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(int(workers), initializer=_init_worker, initargs=(self,)) as pool:
            chunk = max(1, min(16, n // (4 * workers)))
            for i, (image, fields) in zip(indices, pool.imap(_worker_sample, indices, chunksize=chunk)):
                yield self.file_name(i), image, fields


_WORKER: FormStream | None = None


def _init_worker(generator: FormStream) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001 - cv2 thread setting is only an optimisation
        pass
    _WORKER = generator


def _worker_sample(i: int) -> tuple[Image.Image, dict[str, str]]:
    assert _WORKER is not None
    return _WORKER.sample(i)
