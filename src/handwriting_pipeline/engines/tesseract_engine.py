"""Offline engine: Tesseract (Debian ``tesseract-ocr``) through ``pytesseract``, one region at a time.

Same layout and field assignment as RapidOCR (:mod:`handwriting_pipeline.engines.layout`); only the
region reader differs. Tesseract is trained on print, so it reads handwriting poorly; it is here
as a second free engine for ensembles and comparison.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines import layout
from handwriting_pipeline.fields.parse import Word

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TesseractSettings(Settings):
    """``extract.tesseract``."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    psm: int = 7
    lang: str = "eng"
    min_conf: float = 0
    cmd: str | None = None
    read_labels: bool = True


class TesseractEngine(layout.LayoutEngine):
    """Tesseract on the located boxes.

    Args (``extract.tesseract`` parameters):
        psm: page segmentation mode for a box (7 = one text line, 6 = a block).
        lang: traineddata language.
        min_conf: drop words Tesseract scores below this (0-100).
        cmd: the tesseract binary (default: found on PATH).
    """

    name = "tesseract"
    packages = ("pytesseract",)
    version = "2"  # bump when layout/field rules change: it is part of the cache key
    parallel = "process"
    optional = True  # no tesseract binary: skipped with a log line
    settings_class = TesseractSettings

    def __init__(self, psm: int = 7, lang: str = "eng", min_conf: float = 0, cmd: str | None = None,
                 read_labels: bool = True, **config: Any) -> None:
        super().__init__(psm=int(psm), lang=lang, min_conf=float(min_conf), read_labels=read_labels, **config)
        self.cmd = cmd or shutil.which("tesseract")

    def check_ready(self) -> None:
        if not self.cmd or not shutil.which(self.cmd):
            raise RuntimeError(
                "The tesseract engine needs the tesseract binary: `sudo apt-get install tesseract-ocr "
                "tesseract-ocr-eng` (or `make apt`), or set extract.tesseract.cmd; or remove 'tesseract' "
                "from extract.engines.")
        try:
            import pytesseract  # noqa: F401
        except ImportError as err:
            raise RuntimeError("pip install pytesseract for the tesseract engine") from err

    def read_region(self, grey: np.ndarray, psm: int | None = None) -> list[Word]:
        """Words Tesseract finds in a grey region (region coordinates, score 0-1)."""
        import pytesseract

        if grey.size == 0 or min(grey.shape) < 8:
            return []
        pytesseract.pytesseract.tesseract_cmd = self.cmd
        data = pytesseract.image_to_data(
            Image.fromarray(grey), lang=self.config["lang"],
            config=f"--psm {psm or self.config['psm']}", output_type=pytesseract.Output.DICT)
        words = []
        for text, conf, x, y, w, h in zip(data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"]):
            conf = float(conf)
            if not str(text).strip() or conf < 0 or conf < self.config["min_conf"]:
                continue
            words.append(Word(str(text).strip(), conf / 100.0, (int(x), int(y), int(x + w), int(y + h))))
        return words

    def read_labels_region(self, grey: np.ndarray) -> list[Word]:
        """The printed labels are sparse words on one strip: page segmentation mode 11."""
        return self.read_region(grey, psm=11)
