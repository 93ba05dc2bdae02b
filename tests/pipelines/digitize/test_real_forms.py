"""Real forms with the real offline engine (needs ../shared): a page and its crop read the same;
the command line prints valid JSON for one shared crop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.digitize import ImageInputs
from handwriting_pipeline.digitize.core import digitize_records, make_plan
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.forms.registration import crop_top_section

from .test_digitize import PROJECT, _params

CROPS = ("f0019_38.png", "f0044_12.png", "f0113_31.png")


@pytest.mark.timeout(600)
def test_pages_and_their_crops_give_the_same_fields(tmp_path, shared_page, shared_validation):
    """The shared page (registered and cropped here) and its crop handed in as a crop; shared
    crops handed in as they are and pasted onto a page at the crop box."""
    with Image.open(shared_page) as img:
        page = img.copy()
    crop, _ = crop_top_section(page)
    crop.save(tmp_path / "page_crop.png")
    pairs = [(str(shared_page), str(tmp_path / "page_crop.png"))]
    for name in CROPS:
        with Image.open(shared_validation / name) as img:
            sheet = Image.new("L", (2560, 3300), 255)
            sheet.paste(img.convert("L"), (100, 300))
        sheet.save(tmp_path / f"page_{name}")
        pairs.append((str(tmp_path / f"page_{name}"), str(shared_validation / name)))
    params = _params()
    plan = make_plan({**params["digitize"], "method": "rapidocr", "progress": False, "workers": 1},
                     params["extract"], params["ensemble"], {}, ResponseCache(tmp_path / "cache"), datasets={})
    records = {r["source"]: r for r in digitize_records(plan, ImageInputs([p for pair in pairs for p in pair]))}
    for as_page, as_crop in pairs:
        assert records[as_page]["kind"] == "page" and records[as_crop]["kind"] == "crop"
        assert records[as_page]["error"] is None and records[as_crop]["error"] is None
    # the shared page and its crop: the same pixels, the same fields (its boxes are empty)
    page, crop = (records[p] for p in pairs[0])
    assert {k: page[k] for k in KEYS} == {k: crop[k] for k in KEYS} == dict.fromkeys(KEYS, "None")
    # a published crop pasted onto a page: registration deskews it (the published crops were cut
    # from skewed scans without deskewing, 0.2-0.6 degrees here), so the pixels differ slightly;
    # the reading must agree on at least 3 of the 4 fields
    for as_page, as_crop in pairs[1:]:
        same = [k for k in KEYS if records[as_page][k] == records[as_crop][k]]
        assert len(same) >= 3, {k: (records[as_page][k], records[as_crop][k]) for k in KEYS}


@pytest.mark.timeout(600)
def test_the_command_line_prints_the_json_of_one_crop(shared_validation):
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "handwriting_pipeline.digitize", str(shared_validation / CROPS[0]),
                           "--method", "rapidocr"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert set(KEYS) <= set(record) and record["error"] is None and record["kind"] == "crop"
    assert all(isinstance(record[k], str) for k in KEYS) and record["DATE"] != "None"
    assert Path(record["source"]).name == CROPS[0]
