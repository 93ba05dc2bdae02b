"""The form spec, form-facing: load a spec, register a page the way it says, its boxes on an image.

The spec's models, checks and shipped forms live on the ground floor
(:mod:`handwriting_pipeline.fields.formspec`: the HSF field constants are derived from its
spec) and are re-exported here. What this module adds is geometry:

* :func:`register` cuts the spec's crop out of a scanned page with its registration method:
  ``box_lines`` (the printed box row, :func:`.registration.crop_top_section`; a spec without a
  crop: the page as it is), ``features`` (ORB key points + ECC against the spec's blank template
  image, :mod:`.features`);
* :func:`line_boxes` gives the line boxes on an image of the crop's (or page's) size, scaled;
  :func:`page_boxes` the crop and line boxes on a full page (no registration).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from handwriting_pipeline.fields.formspec import (
    FORMS_DIR,
    HSF_FORM,
    Box,
    FieldSpec,
    FormSpec,
    FormSpecError,
    Line,
    hsf_form,
    load_form,
    parse_form,
    shipped_forms,
)
from handwriting_pipeline.forms.registration import crop_top_section

__all__ = ["FORMS_DIR", "HSF_FORM", "Box", "FieldSpec", "FormSpec", "FormSpecError", "Line", "hsf_form", "line_boxes",
           "load_form", "page_boxes", "parse_form", "register", "shipped_forms"]


def register(page: Image.Image, spec: FormSpec, **options) -> tuple[Image.Image, Any]:
    """The spec's crop (or whole page) of a scanned ``page``, registered with the spec's method.

    ``box_lines``: :func:`.registration.crop_top_section` with the spec's crop (``options`` are
    its keyword arguments: ``max_shift``, ``max_skew``, ...); it finds the HSF form's box row.
    ``features``: :func:`.features.register_features` onto the spec's template image, then the
    spec's crop (a :class:`.features.FeatureRegistration` is returned).
    """
    registration = spec.page.registration
    if registration.method == "features":
        from handwriting_pipeline.forms.features import register_features

        registered, found = register_features(page, spec.template_path(), registration.max_features,
                                              registration.min_matches)
        crop = spec.page.crop
        return (registered.crop(crop) if crop else registered), found
    if spec.page.crop is None:
        return page, None
    return crop_top_section(page, box=spec.page.crop, **options)


def _scaled(box: Box, sx: float, sy: float, dx: int = 0, dy: int = 0) -> Box:
    return (round(box[0] * sx) + dx, round(box[1] * sy) + dy, round(box[2] * sx) + dx, round(box[3] * sy) + dy)


def line_boxes(spec: FormSpec, size: tuple[int, int] | None = None) -> dict[str, Box]:
    """Line name -> box on an image of ``size`` (width, height) showing the spec's crop (or page,
    without a crop), scaled from the template; lines without a box are left out."""
    area_w, area_h = spec.page.area
    width, height = size or (area_w, area_h)
    return {line.name: _scaled(line.box, width / area_w, height / area_h) for line in spec.lines if line.box}


def page_boxes(spec: FormSpec, size: tuple[int, int] | None = None) -> dict[str, Box]:
    """The crop (key ``"crop"``, when the spec has one) and the line boxes on a full page of
    ``size``, scaled from the template page, as the template places them (no registration)."""
    page_w, page_h = spec.page.size
    width, height = size or (page_w, page_h)
    sx, sy = width / page_w, height / page_h
    crop = spec.page.crop
    if crop is None:
        return line_boxes(spec, (width, height))
    dx, dy = round(crop[0] * sx), round(crop[1] * sy)
    boxes = {"crop": _scaled(crop, sx, sy)}
    boxes.update({line.name: _scaled(line.box, sx, sy, dx, dy) for line in spec.lines if line.box})
    return boxes
