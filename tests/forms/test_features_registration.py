"""Registration on image features (``registration: {method: features, template: ...}``): a scan
rotated, scaled and shifted comes back onto its blank template, so the line boxes are where the
spec puts them; a page of another form is refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from handwriting_pipeline.fields.formspec import FORMS_DIR, load_form
from handwriting_pipeline.forms.boxes import find_line_boxes, to_grey
from handwriting_pipeline.forms.registration import RegistrationError
from handwriting_pipeline.forms.spec import line_boxes, register
from handwriting_pipeline.synthetic import SpecFormGenerator


@pytest.fixture(scope="module")
def features_card(tmp_path_factory):
    """The order card with features registration against a blank card rendered as its template."""
    folder = tmp_path_factory.mktemp("features_card")
    card = load_form("order_card")
    blank = SpecFormGenerator(card, seed=0, blank_rate=1.0, rotation_deg=0.0, shift_x=[0, 0], shift_y=[0, 0],
                              salt_noise=0).render(0)
    blank.image.convert("L").save(folder / "blank_card.png")
    data = yaml.safe_load((FORMS_DIR / "order_card.yml").read_text())
    data["page"]["registration"] = {"method": "features", "template": "blank_card.png"}
    (folder / "card.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_form(folder / "card.yml")


def _scanned(image: Image.Image, angle: float, scale: float, dx: int, dy: int) -> Image.Image:
    """``image`` as a careless scanner would give it back: turned, scaled, shifted, same size."""
    grey = image.convert("L")
    width, height = grey.size
    turned = grey.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255,
                         center=(width / 2, height / 2), translate=(dx, dy))
    small = turned.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
    page = Image.new("L", (width, height), 255)
    page.paste(small, (0, 0))
    return page


def _offset(boxes: dict, template: dict) -> int:
    return max(abs(a - b) for name in template for a, b in zip(boxes[name], template[name]))


def test_a_turned_scaled_shifted_card_comes_back_onto_its_template(features_card):
    filled = SpecFormGenerator(features_card, seed=4, rotation_deg=0.0, shift_x=[0, 0], shift_y=[0, 0]).render(1)
    scan = _scanned(filled.image, angle=2.5, scale=0.96, dx=35, dy=-25)
    template = line_boxes(features_card)
    before, found_before = find_line_boxes(to_grey(scan), features_card)
    registered, found = register(scan, features_card)
    after, all_found = find_line_boxes(to_grey(registered), features_card)
    assert registered.size == features_card.page.area and all_found
    assert not found_before or _offset(before, template) > 30  # unregistered: not found, or far off
    assert _offset(after, template) <= 6, (after, template)
    # undoing PIL's counter-clockwise turn is +2.5 degrees in image coordinates (y down)
    assert found.inliers >= 25 and abs(found.angle - 2.5) < 0.3 and abs(found.scale - 1 / 0.96) < 0.02
    # the writing came along: the registered card has ink inside its line boxes
    grey = np.asarray(registered)
    for x0, y0, x1, y1 in template.values():
        assert (grey[y0 + 10:y1 - 10, x0 + 10:x1 - 10] < 128).sum() > 200


def test_a_page_of_another_form_is_not_registered(features_card):
    hsf_like = Image.new("L", features_card.page.area, 255)
    with pytest.raises(RegistrationError, match="feature registration"):
        register(hsf_like, features_card)
