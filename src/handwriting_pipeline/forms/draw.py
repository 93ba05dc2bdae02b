"""Draw a form spec's boxes over a scan, so a person can check them by eye.

::

    python -m handwriting_pipeline.forms.draw SPEC SCAN OUT.png [--register]

``SPEC`` is a shipped form's name (``hsf_top``) or a spec file. ``SCAN`` is either a crop (an
image of the crop's proportions, e.g. a published HSF top-section crop) or a full page: on a
crop the line boxes are drawn scaled to it; on a page the crop box and the line boxes as the
template places them, or, with ``--register``, the page is first registered and cut with the
spec's method and the boxes drawn on the crop. Each line box is labelled with its name and
its fields (``CSZ: CITY | STATE | ZIP``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from handwriting_pipeline.forms.spec import FormSpec, line_boxes, load_form, page_boxes, register

CROP_COLOUR = (255, 128, 0)  # BGR: blue-ish
LINE_COLOUR = (0, 0, 230)  # red


def _is_crop(spec: FormSpec, size: tuple[int, int], tolerance: float = 0.04) -> bool:
    """Whether an image of ``size`` shows the spec's crop (its proportions), not a whole page."""
    if spec.page.crop is None:
        return False
    area_w, area_h = spec.page.area
    return abs(size[0] / size[1] - area_w / area_h) <= tolerance * area_w / area_h


def draw_boxes(spec: FormSpec, scan: Image.Image, register_page: bool = False) -> np.ndarray:
    """A BGR picture of ``scan`` with the spec's boxes drawn on it (see the module docstring)."""
    if register_page and not _is_crop(spec, scan.size):
        scan, _ = register(scan, spec)
    size = scan.size
    canvas = cv2.cvtColor(np.asarray(scan.convert("L")), cv2.COLOR_GRAY2BGR)
    boxes = line_boxes(spec, size) if _is_crop(spec, size) else page_boxes(spec, size)
    thickness = max(2, round(max(size) / 800))
    scale = max(0.6, max(size) / 2000)
    for name, (x0, y0, x1, y1) in boxes.items():
        colour = CROP_COLOUR if name == "crop" else LINE_COLOUR
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), colour, thickness)
        label = "crop" if name == "crop" else f"{name}: {' | '.join(spec.line(name).fields)}"
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        origin = (x0 + 4, y0 - 8) if y0 > text_h + 16 else (x0 + 4, y1 + text_h + 8)
        cv2.rectangle(canvas, (origin[0] - 3, origin[1] - text_h - 4), (origin[0] + text_w + 3, origin[1] + base),
                      (255, 255, 255), cv2.FILLED)  # the label on white, readable over printed text
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handwriting_pipeline.forms.draw", description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="a shipped form's name (hsf_top) or a form spec file")
    parser.add_argument("scan", type=Path, help="a scanned page or a crop")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--register", action="store_true", help="register and crop a page with the spec's method first")
    args = parser.parse_args(argv)
    spec = load_form(args.spec)
    with Image.open(args.scan) as scan:
        picture = draw_boxes(spec, scan, register_page=args.register)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), picture):
        print(f"could not write {args.out}", file=sys.stderr)
        return 1
    print(f"{args.out}: {spec.name} boxes on {args.scan}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
