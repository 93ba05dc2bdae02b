"""Folders of scans for the digitize tests, made from embedded synthetic forms (no ../shared)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from handwriting_pipeline.synthetic.generator import SyntheticFormGenerator


def synthetic_page(crop: Image.Image) -> Image.Image:
    """A full 2560x3300 page: the crop pasted where the top section lies (curation.crop.box)."""
    page = Image.new("L", (2560, 3300), 255)
    page.paste(crop.convert("L"), (100, 300))
    return page


@pytest.fixture(scope="session")
def synthetic_crops() -> list[Image.Image]:
    generator = SyntheticFormGenerator(seed=3, blank_rate=0.0, empty_field_rate=0.0)
    return [generator.sample(i)[0] for i in range(4)]


def make_mixed_folder(folder: Path, crops: list[Image.Image]) -> dict[str, str | None]:
    """Pages, crops, a truncated PNG, text named .png, an 800x600 photo, a blank crop, a
    two-page TIFF, a colour JPEG crop. Returns file name -> expected error (None: read)."""
    folder.mkdir(parents=True, exist_ok=True)
    crops[0].save(folder / "crop_a.png")
    synthetic_page(crops[1]).save(folder / "page_b.png")
    (folder / "sub").mkdir()
    synthetic_page(crops[2]).convert("1").save(folder / "sub" / "page_c.tif", compression="group4")
    crops[3].convert("RGB").save(folder / "crop_d.jpg", quality=95)
    whole = (folder / "crop_a.png").read_bytes()
    (folder / "corrupt.png").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.png").write_text("this is a text file, not an image\n")
    Image.new("RGB", (800, 600), (90, 140, 200)).save(folder / "photo.jpg")
    Image.new("1", (2460, 350), 1).save(folder / "blank.png")
    pages = [synthetic_page(crops[0]).convert("1"), Image.new("L", (800, 600), 128)]
    pages[0].save(folder / "two_pages.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    (folder / "readme.txt").write_text("not listed: not an image by its name\n")
    return {"crop_a.png": None, "page_b.png": None, "sub/page_c.tif": None, "crop_d.jpg": None,
            "corrupt.png": "truncated PNG", "notes.png": "not an image",
            "photo.jpg": "800x600: neither an HSF page nor a top-section crop", "blank.png": "blank form",
            "two_pages.tif#1": None, "two_pages.tif#2": "800x600: neither an HSF page nor a top-section crop"}


@pytest.fixture
def mixed_folder(tmp_path, synthetic_crops) -> tuple[Path, dict[str, str | None]]:
    folder = tmp_path / "scans"
    return folder, make_mixed_folder(folder, synthetic_crops)
