"""Page vs crop vs anything else, decided from the image; bad files get their reason."""

from __future__ import annotations

import numpy as np
from PIL import Image

from handwriting_pipeline.datasets.digitize import list_images
from handwriting_pipeline.digitize.inputs import read_forms, to_crop
from handwriting_pipeline.forms.registration import crop_top_section

from .conftest import synthetic_page


def _key(form, root) -> str:
    rel = str(form.source).removeprefix(str(root) + "/")
    return rel if form.pages == 1 else f"{rel}#{form.page}"


def test_every_file_gets_a_crop_or_its_reason(mixed_folder):
    folder, expected = mixed_folder
    inputs = list_images(folder)
    assert inputs.skipped == 1  # readme.txt
    forms = {_key(f, folder.resolve()): f for path in inputs for f in read_forms(path)}
    assert {k: f.error for k, f in forms.items()} == expected
    assert forms["page_b.png"].kind == "page" and forms["crop_a.png"].kind == "crop"
    assert forms["two_pages.tif#1"].kind == "page" and forms["two_pages.tif#1"].pages == 2
    for form in forms.values():
        if form.error is None:
            assert form.crop.size == (2460, 350)


def test_a_page_and_its_crop_give_the_same_crop(synthetic_crops):
    page = synthetic_page(synthetic_crops[1])
    from_page, kind = to_crop(page, {"crop_box": [100, 300, 2560, 650], **_defaults()})
    assert kind == "page"
    reference, _ = crop_top_section(page)
    assert np.array_equal(np.asarray(from_page), np.asarray(reference))
    again, kind = to_crop(from_page, _defaults())  # the crop handed in as a crop: used as it is
    assert kind == "crop" and np.array_equal(np.asarray(again), np.asarray(from_page))


def test_other_resolutions_and_modes(synthetic_crops):
    page = synthetic_page(synthetic_crops[2])
    crop, kind = to_crop(page.resize((1700, 2191)).convert("RGB"), _defaults())  # a 200 dpi colour scan
    assert kind == "page" and crop.size == (2460, 350)
    crop, kind = to_crop(synthetic_crops[2].convert("L").resize((1230, 175)), _defaults())  # half-size crop
    assert kind == "crop" and crop.size == (2460, 350)
    blank_page = Image.new("L", (2560, 3300), 255)
    try:
        to_crop(blank_page, _defaults())
    except ValueError as err:
        assert str(err) == "blank form"
    else:
        raise AssertionError("a blank page must be rejected")


def test_the_shared_page_is_registered_and_cropped(shared_page):
    with Image.open(shared_page) as img:
        crop, kind = to_crop(img.copy(), _defaults())
    assert kind == "page" and crop.size == (2460, 350) and crop.mode == "1"


def _defaults():
    from handwriting_pipeline.digitize.inputs import DEFAULTS

    return dict(DEFAULTS)
