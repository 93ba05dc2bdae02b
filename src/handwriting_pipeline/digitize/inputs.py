"""From a scanned file to the form's reading area: open, split pages, tell page from crop, check.

Every image of a file (each page of a multi-page TIFF) becomes one :class:`Form`: its crop (the
area the engines read: the spec's ``page.crop``, or the whole page of a spec without one), or
the reason it cannot be read. What an image is, is decided from the image and the run's form
spec (``form`` in ``parameters.yml``, :func:`~handwriting_pipeline.fields.formspec.load_form`):

* a **crop**: an image of the spec's crop size (for the HSF top section 2460x350, the published
  SD19 crops), taken as it is, or the same shape at another resolution (resized, accepted when
  its printed boxes are found on it: the HSF box row, another form's line boxes);
* a **full page**: the spec's page aspect ratio (HSF: portrait 2560x3300 at 300 dpi; other
  resolutions are resized to the template page), registered the way the spec says
  (:func:`~handwriting_pipeline.forms.spec.register`: the printed box lines, and its crop cut);
  a page of a spec without a crop is read whole, so a page of the template's size is used as
  it is;
* anything else is rejected: ``"800x600: neither an HSF page nor a top-section crop"``, or for
  another form ``"800x600: not a page of form 'order_card' (1700x1100, or its aspect ratio)"``.

Crops then pass the evaluation input checks (share of dark pixels,
:func:`~handwriting_pipeline.forms.ink.ink_problem`; tuned on the HSF top section):
``"blank form"``. Unreadable files: ``"not an image"``, ``"empty file"``, ``"truncated PNG"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageSequence, UnidentifiedImageError

from handwriting_pipeline.fields.formspec import FormSpec, hsf_form, is_hsf_layout
from handwriting_pipeline.forms.ink import DEFAULT_IMAGE_SIZE, ink_problem, ink_share
from handwriting_pipeline.forms.registration import RegistrationError, box_lines
from handwriting_pipeline.forms.spec import register

PAGE_SIZE = (2560, 3300)
CROP_SIZE = DEFAULT_IMAGE_SIZE

DEFAULTS: dict[str, Any] = {
    "crop_box": [100, 300, 2560, 650],   # curation.crop.box: where the top section lies on a page
    "max_shift": 200, "max_skew": 3.0, "threshold": 128,
    "aspect_tolerance": 0.04,            # relative tolerance of the page / crop aspect ratios
    "min_width": 1200,                   # narrower images are neither (too little resolution; another
                                         # form's: scaled by its crop's width over the HSF crop's)
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


def _shaped(width: int, height: int, size: tuple[int, int], tolerance: float) -> bool:
    """Whether an image is oriented as ``size`` (portrait, landscape) with its aspect ratio
    (long side over short side) within ``tolerance``."""
    w, h = size
    if h > w:
        return height > width and _near(height / width, h / w, tolerance)
    if w > h:
        return width > height and _near(width / height, w / h, tolerance)
    return _near(width / height, 1.0, tolerance)


def _min_width(spec: FormSpec, opts: Mapping[str, Any]) -> int:
    """``min_width`` for the HSF form; another form's scaled by its area's width over the HSF crop's."""
    if is_hsf_layout(spec):
        return int(opts["min_width"])
    return round(int(opts["min_width"]) * spec.page.area[0] / CROP_SIZE[0])


def _register(page: Image.Image, spec: FormSpec, opts: Mapping[str, Any]) -> Image.Image:
    """The spec's crop (or whole page) of a page of the template's size (:func:`.forms.spec.register`);
    on the HSF form ``input_checks.crop_box`` is where the top section lies (the spec's crop)."""
    if is_hsf_layout(spec) and opts.get("crop_box") is not None:
        box = tuple(int(v) for v in opts["crop_box"])
        if box != spec.page.crop:
            spec = spec.model_copy(update={"page": spec.page.model_copy(update={"crop": box})})
    crop, _ = register(page, spec, max_shift=int(opts["max_shift"]), max_skew=float(opts["max_skew"]),
                       threshold=int(opts["threshold"]))
    return crop


def _boxes_problem(crop: Image.Image, spec: FormSpec) -> str | None:
    """Why the printed boxes of a resized crop were not found (None: found)."""
    if is_hsf_layout(spec):
        try:
            box_lines(crop)
        except RegistrationError as err:
            return str(err)
        return None
    from handwriting_pipeline.forms.boxes import find_line_boxes, to_grey

    _, found = find_line_boxes(to_grey(crop), spec)
    return None if found else "a line box was not found where the spec places it"


def _names(spec: FormSpec) -> tuple[str, str]:
    """How messages name the spec's page and its crop."""
    if is_hsf_layout(spec):
        return "HSF page", "top-section crop"
    return f"page of form '{spec.name}'", f"crop of form '{spec.name}'"


def _neither(width: int, height: int, spec: FormSpec) -> str:
    if is_hsf_layout(spec):
        return f"{width}x{height}: neither an HSF page nor a top-section crop"
    page_w, page_h = spec.page.size
    if spec.page.crop is None:
        return f"{width}x{height}: not a page of form '{spec.name}' ({page_w}x{page_h}, or its aspect ratio)"
    area_w, area_h = spec.page.area
    return (f"{width}x{height}: neither a page of form '{spec.name}' ({page_w}x{page_h}, or its aspect ratio) "
            f"nor its crop ({area_w}x{area_h})")


def to_crop(image: Image.Image, opts: Mapping[str, Any], spec: FormSpec | None = None) -> tuple[Image.Image, str]:
    """``(crop, "page" | "crop")`` of one image of the form ``spec`` (None: the HSF top section):
    what the engines read - the spec's crop, or the whole page of a spec without one. Raises
    ValueError with the reason."""
    spec = hsf_form() if spec is None else spec
    width, height = image.size
    tol = float(opts["aspect_tolerance"])
    page_size, area = tuple(spec.page.size), tuple(spec.page.area)
    has_crop = spec.page.crop is not None
    min_width = _min_width(spec, opts)
    page_name, crop_name = _names(spec)
    if has_crop and (width, height) == area:
        crop, kind = _plain(image), "crop"
    elif width >= min_width and _shaped(width, height, page_size, tol):
        page = _plain(image)
        if ink_share(page) < float(opts["min_page_ink_share"]):
            raise ValueError("blank form")
        if page.size != page_size:
            page = page.convert("L").resize(page_size, Image.Resampling.BILINEAR)
        try:
            crop = _register(page, spec, opts)
        except RegistrationError as err:
            what = "printed box lines not found" if spec.page.registration.method == "box_lines" else "not registered"
            raise ValueError(f"{width}x{height} {page_name}: {what} ({err})") from err
        except (NotImplementedError, FileNotFoundError) as err:
            raise ValueError(f"{width}x{height} {page_name}: cannot be registered ({err})") from err
        kind = "page"
    elif has_crop and width >= min_width and _shaped(width, height, area, tol):
        crop = _plain(image).convert("L").resize(area, Image.Resampling.BILINEAR)
        if ink_share(crop) >= float(opts["min_ink_share"]):
            problem = _boxes_problem(crop, spec)
            if problem:
                raise ValueError(f"{width}x{height}: shaped like a {crop_name} but its box lines "
                                 f"were not found ({problem})")
        kind = "crop"
    else:
        raise ValueError(_neither(width, height, spec))
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


def read_forms(path: str | Path, params: Mapping[str, Any] | None = None,
               spec: FormSpec | None = None) -> Iterator[Form]:
    """Every image of the file at ``path`` as a :class:`Form` of the form ``spec`` (None: the
    HSF top section); never raises for a bad file."""
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
                    crop, kind = to_crop(image, opts, spec)
                except ValueError as err:
                    yield Form(str(path), number, pages, error=str(err))
                    continue
                yield Form(str(path), number, pages, crop=crop, kind=kind)
    except Exception as err:  # noqa: BLE001 - not an image, truncated, unreadable: the reason, the run goes on
        yield Form(str(path), done + 1, max(done + 1, 1), error=_open_error(path, err, fmt))
