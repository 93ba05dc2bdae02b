"""The command that draws a form spec's boxes over a scan (a page or a crop)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from handwriting_pipeline.fields.formspec import hsf_form, load_form
from handwriting_pipeline.forms.draw import LINE_COLOUR, draw_boxes, main
from handwriting_pipeline.forms.spec import line_boxes, page_boxes


def _red(picture: np.ndarray) -> np.ndarray:
    return np.all(picture == np.array(LINE_COLOUR, dtype=np.uint8), axis=2)


def test_boxes_scale_to_the_image():
    spec = hsf_form()
    assert line_boxes(spec) == {"DATE": (770, 188, 1135, 295), "CSZ": (1185, 188, 2143, 295)}
    assert line_boxes(spec, (1230, 175))["DATE"] == (385, 94, 568, 148)
    boxes = page_boxes(spec)
    assert boxes["crop"] == (100, 300, 2560, 650) and boxes["DATE"] == (870, 488, 1235, 595)
    assert page_boxes(load_form("order_card"))["CSZ"] == (120, 740, 1580, 860)


def test_draw_on_a_blank_crop_marks_the_line_boxes(tmp_path):
    picture = draw_boxes(hsf_form(), Image.new("L", (2460, 350), 255))
    red = _red(picture)
    assert red[188:295, 770].any() and red[188:295, 2142].any()  # left edge of DATE, right edge of CSZ
    assert not red[:, :700].any()


def test_draw_command_on_the_real_page_and_a_crop(tmp_path, shared_page, shared_hsf_top):
    out = tmp_path / "page.png"
    assert main(["hsf_top", str(shared_page), str(out), "--register"]) == 0
    with Image.open(out) as image:
        assert image.size == (2460, 350)
    crop = sorted((shared_hsf_top / "train").glob("*.png"))[0]
    out = tmp_path / "crop.png"
    assert main(["hsf_top", str(crop), str(out)]) == 0
    with Image.open(out) as image, Image.open(crop) as scan:
        assert image.size == scan.size
    assert main([str(load_form("hsf_top").name), str(shared_page), str(tmp_path / "whole.png")]) == 0
