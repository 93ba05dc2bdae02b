"""A toy engine for the digitize tests: reads a form's ink share as its DATE, logs every call
(one line per read in ``log``, so tests count the calls across processes and runs), and can
stop the run after ``stop_after`` reads (a kill mid-run)."""

from __future__ import annotations

import numpy as np

from handwriting_pipeline.engines.base import Engine, EngineResult


class Killed(BaseException):
    """Ends a run like a kill: not an Exception, so the runner does not catch it."""


class ToyEngine(Engine):
    name = "toy"
    parallel = "serial"
    default = True

    def __init__(self, log: str | None = None, stop_after: int | None = None, confidence: float = 0.9,
                 **config) -> None:
        super().__init__(confidence=confidence, **config)  # log / stop_after are not part of the cache key
        self.log, self.stop_after, self.reads = log, stop_after, 0

    def read(self, image, file_name=""):
        if self.stop_after is not None and self.reads >= self.stop_after:
            raise Killed(f"killed after {self.reads} reads")
        self.reads += 1
        if self.log:
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(f"{file_name}\n")
        ink = float((np.asarray(image.convert("L")) < 128).mean())
        fields = {"DATE": f"{ink:.4f}", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}
        conf = {"DATE": 0.3, "CITY": self.config["confidence"], "STATE": self.config["confidence"],
                "ZIP": self.config["confidence"]}
        return EngineResult(fields=fields, confidence=conf)


def calls(log) -> list[str]:
    try:
        return [line for line in open(log, encoding="utf-8").read().splitlines() if line]
    except FileNotFoundError:
        return []


class FastToyEngine(ToyEngine):
    """The toy as a cascade's fast reader (``fast = True``)."""

    name = "fasttoy"
    fast = True
