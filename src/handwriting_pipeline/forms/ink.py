"""Is an image a usable form image (an HSF top-section crop by default)? Its size and its share of dark pixels.

Used by the evaluation's form check (``select_forms``), curation and digitize's input checks.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_IMAGE_SIZE = (2460, 350)


def check_form_image(image: Image.Image, size: tuple[int, int] | None = DEFAULT_IMAGE_SIZE,
                     min_ink_share: float = 0.01, max_ink_share: float = 0.6) -> str | None:
    """Why ``image`` is not a usable form crop, or None when it is.

    Checks, in this order: the size (``size``; a portrait image that is at least as large is
    reported as a full page), then the share of dark pixels (< ``min_ink_share``: blank;
    > ``max_ink_share``: noise or an inverted scan). Real SD19 crops have 16-20 % dark pixels
    (printed boxes and the blacked-out NAME field), blank forms included.
    """
    width, height = image.size
    if size and (width, height) != tuple(size):
        expected = f"expected {size[0]}x{size[1]}"
        if tuple(size) != DEFAULT_IMAGE_SIZE:  # another form's size (its spec's crop or page)
            return f"image is {width}x{height}, {expected} (the form's size, from its spec)"
        if height > width and width >= size[0]:
            return (f"image is {width}x{height}, {expected}: this looks like a full page, not the top-section "
                    "crop; crop pages with the curation pipeline (curation.source=sd19_pages)")
        return f"image is {width}x{height}, {expected} (a top-section crop of an SD19 form)"
    return ink_problem(image, min_ink_share, max_ink_share)


def ink_share(image: Image.Image) -> float:
    """Share of dark pixels (grey < 128), on a 4x reduced copy of large images."""
    width, height = image.size
    gray = np.asarray(image.convert("L").reduce(4) if min(width, height) >= 64 else image.convert("L"))
    return float((gray < 128).mean())


def ink_problem(image: Image.Image, min_ink_share: float = 0.01, max_ink_share: float = 0.6) -> str | None:
    """Why a crop of the right size is not a usable form (blank, or mostly dark), or None."""
    ink = ink_share(image)
    if ink < min_ink_share:
        return f"image is blank ({100 * ink:.2f} % dark pixels, minimum {100 * min_ink_share:g} %)"
    if ink > max_ink_share:
        return f"image is mostly dark ({100 * ink:.0f} % dark pixels, maximum {100 * max_ink_share:g} %): noise or inverted?"
    return None
