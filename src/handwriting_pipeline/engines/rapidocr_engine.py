"""Offline engine: RapidOCR (PP-OCRv6 ONNX models shipped in the ``rapidocr`` wheel).

The crop's boxes and labels are located by :mod:`handwriting_pipeline.engines.layout`; each box
is read as a region (RapidOCR's text detector finds the lines inside it, each detected line is
recognised as one line). Full-page detection glues words of neighbouring fields, which reads
worse. The orientation classifier is off (crops are upright) and onnxruntime uses
``threads`` intra-op threads (1 per worker process when forms are read in parallel).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines import layout
from handwriting_pipeline.fields.parse import Word

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RapidOCRSettings(Settings):
    """``extract.rapidocr``."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    threads: int = 1
    text_score: float = 0.3
    box_thresh: float = 0.5
    det_limit_type: str = "max"
    det_limit_side_len: int = 960
    read_labels: bool = True


class RapidOCREngine(layout.LayoutEngine):
    """RapidOCR on the located boxes, fields assigned by position and rules.

    Args (from ``extract.rapidocr`` parameters):
        threads: onnxruntime intra-op threads (1 per worker).
        text_score: drop recognised lines scoring below this (0-1).
        box_thresh: detector box threshold.
        read_labels: find the printed labels by OCR (else template positions).
    """

    name = "rapidocr"
    packages = ("rapidocr", "onnxruntime")
    version = "2"  # bump when layout/field rules change: it is part of the cache key
    process_local = ("_ocr",)
    parallel = "process"  # CPU-bound: one worker process per core, one onnxruntime thread each
    default = True
    settings_class = RapidOCRSettings

    def __init__(self, threads: int = 1, text_score: float = 0.3, box_thresh: float = 0.5,
                 read_labels: bool = True, det_limit_type: str = "max", det_limit_side_len: int = 960,
                 **config: Any) -> None:
        super().__init__(text_score=text_score, box_thresh=box_thresh, read_labels=read_labels,
                         det_limit_type=det_limit_type, det_limit_side_len=det_limit_side_len, **config)
        self.threads = int(threads)
        self._ocr = None

    def check_ready(self) -> None:
        try:
            import rapidocr  # noqa: F401
        except ImportError as err:  # pragma: no cover - rapidocr is a core dependency
            raise RuntimeError("The rapidocr engine needs the 'rapidocr' package: pip install 'rapidocr>=3,<4'") from err

    @property
    def ocr(self):
        if self._ocr is None:
            from rapidocr import RapidOCR

            self._ocr = RapidOCR(params={
                "Global.use_cls": False,
                "Global.log_level": "error",  # "text detection result is empty" for blank boxes is normal
                "Global.text_score": float(self.config["text_score"]),
                "Det.box_thresh": float(self.config["box_thresh"]),
                "Det.limit_type": str(self.config["det_limit_type"]),
                "Det.limit_side_len": int(self.config["det_limit_side_len"]),
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
        return self._ocr

    def read_region(self, grey: np.ndarray) -> list[Word]:
        """Text lines RapidOCR detects and recognises in a grey region (region coordinates)."""
        if grey.size == 0 or min(grey.shape) < 8:
            return []
        result = self.ocr(np.stack([grey] * 3, axis=-1), use_cls=False)
        if result.boxes is None or result.txts is None:
            return []
        words = []
        for box, text, score in zip(result.boxes, result.txts, result.scores):
            pts = np.asarray(box)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            words.append(Word(str(text), float(score), (int(x0), int(y0), int(x1), int(y1))))
        return words
