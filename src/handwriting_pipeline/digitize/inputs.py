"""From a scanned file to top-section crops: open, split pages, tell page from crop, check.

Every image of a file (each page of a multi-page TIFF) becomes one :class:`Form`: its crop, or
the reason it cannot be read. What an image is, is decided from the image itself:

* a **top-section crop**: 2460x350 (the published SD19 crops), or the same shape at another
  resolution (resized, accepted when the printed box row is found on it);
* a **full HSF page**: portrait with the SD19 page's aspect ratio (2560x3300 at 300 dpi; other
  resolutions are resized to it), registered on its printed box lines and cropped by the
  curation code (:func:`~handwriting_pipeline.forms.registration.crop_top_section`);
* anything else is rejected: ``"800x600: neither an HSF page nor a top-section crop"``.

Crops then pass the evaluation input checks (share of dark pixels,
:func:`~handwriting_pipeline.forms.ink.ink_problem`): ``"blank form"``.
Unreadable files: ``"not an image"``, ``"empty file"``, ``"truncated PNG"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageSequence, UnidentifiedImageError

from handwriting_pipeline.forms.ink import DEFAULT_IMAGE_SIZE, ink_problem, ink_share
from handwriting_pipeline.forms.registration import RegistrationError, box_lines, crop_top_section

PAGE_SIZE = (2560, 3300)
CROP_SIZE = DEFAULT_IMAGE_SIZE

DEFAULTS: dict[str, Any] = {
    "crop_box": [100, 300, 2560, 650],   # curation.crop.box: where the top section lies on a page
    "max_shift": 200, "max_skew": 3.0, "threshold": 128,
    "aspect_tolerance": 0.04,            # relative tolerance of the page / crop aspect ratios
    "min_width": 1200,                   # smaller images are neither (too little resolution)
    "min_ink_share": 0.01, "max_ink_share": 0.6,   # evaluation.input_checks
    "min_page_ink_share": 0.002,         # a page with less ink is a blank sheet
}


@dataclass
class Form:
    """One image of an input file: its crop (None when rejected), what it was, or why not."""

    source: str
    page: int  # 1-based image number in the file (TIFF pages); 1 for single images
    pages: int
    crop: Image.Image | None = None
    kind: str = ""  # "page" or "crop" (what the input image was)
    error: str | None = None

    @property
    def form_id(self) -> str:
        return self.source if self.pages == 1 else f"{self.source}#{self.page}"


def options(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULTS, **{k: v for k, v in (params or {}).items() if v is not None}}


def _near(ratio: float, expected: float, tolerance: float) -> bool:
    return abs(ratio / expected - 1.0) <= tolerance


def _plain(image: Image.Image) -> Image.Image:
    """Greyscale and 1-bit stay as they are; colour, palette and alpha become grey on white."""
    if image.mode in ("1", "L"):
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if image.mode.startswith("I") or image.mode == "F":  # 16-bit / float scans
        return image.point(lambda v: v / 256 if v > 255 else v).convert("L")
    return image.convert("L")


def to_crop(image: Image.Image, opts: Mapping[str, Any]) -> tuple[Image.Image, str]:
    """``(top-section crop, "page" | "crop")`` of one image; raises ValueError with the reason."""
    width, height = image.size
    tol = float(opts["aspect_tolerance"])
    if (width, height) == CROP_SIZE:
        crop, kind = _plain(image), "crop"
    elif height > width and width >= opts["min_width"] and _near(height / width, PAGE_SIZE[1] / PAGE_SIZE[0], tol):
        page = _plain(image)
        if ink_share(page) < float(opts["min_page_ink_share"]):
            raise ValueError("blank form")
        if page.size != PAGE_SIZE:
            page = page.convert("L").resize(PAGE_SIZE, Image.Resampling.BILINEAR)
        try:
            crop, _ = crop_top_section(page, tuple(int(v) for v in opts["crop_box"]), register=True,
                                       max_shift=int(opts["max_shift"]), max_skew=float(opts["max_skew"]),
                                       threshold=int(opts["threshold"]))
        except RegistrationError as err:
            raise ValueError(f"{width}x{height} HSF page: printed box lines not found ({err})") from err
        kind = "page"
    elif width > height and width >= opts["min_width"] and _near(width / height, CROP_SIZE[0] / CROP_SIZE[1], tol):
        crop = _plain(image).convert("L").resize(CROP_SIZE, Image.Resampling.BILINEAR)
        if ink_share(crop) >= float(opts["min_ink_share"]):
            try:
                box_lines(crop)
            except RegistrationError as err:
                raise ValueError(f"{width}x{height}: shaped like a top-section crop but its box lines "
                                 f"were not found ({err})") from err
        kind = "crop"
    else:
        raise ValueError(f"{width}x{height}: neither an HSF page nor a top-section crop")
    problem = ink_problem(crop, float(opts["min_ink_share"]), float(opts["max_ink_share"]))
    if problem:
        raise ValueError("blank form" if problem.startswith("image is blank") else problem.replace("image is", "form is"))
    return crop, kind


def _open_error(path: Path, err: BaseException, fmt: str | None) -> str:
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, UnidentifiedImageError):
        return "empty file" if path.stat().st_size == 0 else "not an image"
    text = str(err)
    if fmt and ("truncated" in text.lower() or isinstance(err, (SyntaxError, EOFError))):
        return f"truncated {fmt}"
    return f"unreadable {fmt or 'image'} ({type(err).__name__}: {text})"


def read_forms(path: str | Path, params: Mapping[str, Any] | None = None) -> Iterator[Form]:
    """Every image of the file at ``path`` as a :class:`Form` (never raises for a bad file)."""
    opts = options(params)
    path = Path(path)
    fmt, done = None, 0
    try:
        with Image.open(path) as img:
            fmt = img.format
            pages = getattr(img, "n_frames", 1) or 1
            for number, frame in enumerate(ImageSequence.Iterator(img), start=1):
                try:
                    frame.load()
                    image = frame.copy()
                except Exception as err:  # noqa: BLE001 - one broken page: the others are still read
                    done = number
                    yield Form(str(path), number, pages, error=_open_error(path, err, fmt))
                    continue
                done = number
                try:
                    crop, kind = to_crop(image, opts)
                except ValueError as err:
                    yield Form(str(path), number, pages, error=str(err))
                    continue
                yield Form(str(path), number, pages, crop=crop, kind=kind)
    except Exception as err:  # noqa: BLE001 - not an image, truncated, unreadable: the reason, the run goes on
        yield Form(str(path), done + 1, max(done + 1, 1), error=_open_error(path, err, fmt))
