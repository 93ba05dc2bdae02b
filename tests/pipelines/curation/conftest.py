"""Helpers for the curation tests: tiny raw folders built from the real shared page, and a
runner that executes the curation pipeline through the project's own catalog entries."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from PIL import Image, ImageDraw

from handwriting_pipeline.datasets.forms import metadata_line
from handwriting_pipeline.pipelines.curation import create_pipeline
from handwriting_pipeline.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RAW_ENTRIES = ("sd19_pages", "sd19_labels", "donut_folder", "hf_forms")
OUTPUTS = ("train_forms", "validation_forms", "test_forms", "curated_labels", "curation_report")


def curation_config(runtime_params: dict[str, Any] | None = None) -> tuple[dict, dict]:
    """(catalog config of the curation entries, ``curation`` parameters) from conf/base, with
    runtime parameters resolved as ``kedro run --params`` would (the run's ``form``:
    :func:`run_form`)."""
    from omegaconf import OmegaConf

    nested = OmegaConf.to_container(OmegaConf.from_dotlist([f"{k}={v}" for k, v in (runtime_params or {}).items()]))
    loader = _loader(nested)
    catalog = {name: loader["catalog"][name] for name in (*RAW_ENTRIES, *OUTPUTS)}
    params = dict(loader["parameters"]["curation"])
    return catalog, params


def _loader(runtime_params: dict[str, Any] | None) -> OmegaConfigLoader:
    """The project's config loader (its settings: environments, resolvers) on conf/."""
    args = {**CONFIG_LOADER_ARGS, "runtime_params": runtime_params}
    return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **args)


def run_form(runtime_params: dict[str, Any] | None = None) -> str:
    """The run's ``form`` (``params:form``): conf/base/parameters.yml's, or ``runtime_params["form"]``."""
    given = (runtime_params or {}).get("form")
    return given if given is not None else _loader(None)["parameters"]["form"]


def run_curation(tmp_path: Path, runtime_params: dict[str, Any] | None = None,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the curation pipeline with the project's catalog entries (outputs under tmp_path)
    and return the loaded outputs."""
    config, params = curation_config(runtime_params)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            params[key] = {**params.get(key, {}), **value}
        else:
            params[key] = value
    entries = {name: config[name] for name in RAW_ENTRIES}
    out_dir = tmp_path / "out"
    for name in OUTPUTS:
        entry = dict(config[name])
        key = "path" if "path" in entry else "filepath"
        entry[key] = str(out_dir / Path(entry[key]).name)
        entries[name] = entry
    catalog = DataCatalog.from_config(entries)
    catalog["params:curation"] = MemoryDataset(params)
    catalog["params:form"] = MemoryDataset(run_form(runtime_params))
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in OUTPUTS}


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under folder (to prove raw inputs are never modified)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _page_with_mark(page: Image.Image, text: str, angle: float = 0.0, dx: int = 0, dy: int = 0) -> Image.Image:
    """The shared page with a mark written in its DATE box (so every page is distinct), moved."""
    img = page.convert("L").copy()
    draw = ImageDraw.Draw(img)
    for k in range(3):  # thick strokes, like a pen
        draw.text((840 + k, 575), text, fill=0, font_size=48)
    if angle or dx or dy:
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255, translate=(dx, dy))
    return img.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)


@pytest.fixture(scope="session")
def sd19_raw(tmp_path_factory, shared_page) -> dict[str, Any]:
    """A raw SD19 folder pair (pages/, labels/) with good forms and every kind of bad input.

    Returns {"pages", "labels", "good": {form: fields}, "bad": {form: expected reason words}}.
    """
    root = tmp_path_factory.mktemp("sd19_raw")
    pages, labels = root / "pages", root / "labels"
    (pages / "hsf_0").mkdir(parents=True)
    (pages / "hsf_1").mkdir(parents=True)
    labels.mkdir()
    with Image.open(shared_page) as img:
        page = img.convert("L")
    good = {
        "f0001_01": {"DATE": "8/28/89", "CITY": "Dill City", "STATE": "OK", "ZIP": "73641"},
        "f0002_02": {"DATE": "9-1-89", "CITY": "", "STATE": "Ky.", "ZIP": None},  # missing -> "None"
        "f0013_13": {"DATE": "Aug. 3, 1989", "CITY": "Two Rivers", "STATE": "Wi", "ZIP": "54241"},
        "f0067_25": {"DATE": None, "CITY": None, "STATE": None, "ZIP": None},  # the blank form
    }
    moves = {"f0002_02": (1.2, 35, -25), "f0013_13": (-0.8, -40, 50)}
    for name, fields in good.items():
        mark = "" if name == "f0067_25" else name
        _page_with_mark(page, mark, *moves.get(name, (0, 0, 0))).save(pages / "hsf_0" / f"{name}.png")
        (labels / f"{name}.json").write_text(json.dumps(fields))
    bad = {}
    # corrupt PNG (truncated) and a text file named .png
    good_bytes = (pages / "hsf_0" / "f0001_01.png").read_bytes()
    (pages / "hsf_0" / "f0003_03.png").write_bytes(good_bytes[: len(good_bytes) // 3])
    bad["f0003_03"] = "not a readable image"
    (pages / "hsf_0" / "f0004_04.png").write_text("this is not an image\n")
    bad["f0004_04"] = "not a readable image"
    # wrong size
    _page_with_mark(page, "f0005").resize((2000, 2578)).save(pages / "hsf_0" / "f0005_05.png")
    bad["f0005_05"] = "expected 2560x3300"
    # blank page: registration fails
    Image.new("1", (2560, 3300), 1).save(pages / "hsf_0" / "f0006_06.png")
    bad["f0006_06"] = "registration failed"
    # same name in two folders
    _page_with_mark(page, "f0007a").save(pages / "hsf_0" / "f0007_07.png")
    _page_with_mark(page, "f0007b").save(pages / "hsf_1" / "f0007_07.png")
    bad["f0007_07"] = "duplicate name"
    # label problems
    for name in ("f0003_03", "f0004_04", "f0005_05", "f0006_06", "f0007_07"):
        (labels / f"{name}.json").write_text(json.dumps(good["f0001_01"]))
    for name in ("f0008_08", "f0009_09", "f0010_10", "f0011_11"):
        _page_with_mark(page, name).save(pages / "hsf_1" / f"{name}.png")
    (labels / "f0008_08.json").write_text('{"DATE": "8/1/89", "CITY": ')
    bad["f0008_08"] = "label"
    (labels / "f0009_09.json").write_text(json.dumps({"DATE": "8/1/89", "CITY": "X", "STATE": "MI"}))
    bad["f0009_09"] = "lacks keys ['ZIP']"
    (labels / "f0010_10.json").write_text(json.dumps({**good["f0001_01"], "ILLEGIBLE": True}))
    bad["f0010_10"] = "illegible"
    bad["f0011_11"] = "no label file"
    (labels / "f0012_12.json").write_text(json.dumps(good["f0001_01"]))
    bad["f0012_12"] = "has no page"
    (pages / "README.txt").write_text("not a page, ignored (suffix .png only)\n")
    return {"root": root, "pages": pages, "labels": labels, "good": good, "bad": bad}


def write_donut_split(folder: Path, forms: dict[str, dict[str, str]], size=(2460, 350),
                      keys: tuple[str, ...] | None = None) -> None:
    """A Donut-layout split: one distinct 1-bit image per form + metadata.jsonl (labels with
    ``keys``, default the HSF form's)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, (name, fields) in enumerate(forms.items()):
        img = Image.new("1", size, 1)
        ImageDraw.Draw(img).rectangle((10 + 40 * k, 10, 30 + 40 * k, 30), fill=0)
        img.save(folder / name)
        lines.append(metadata_line(name, fields) if keys is None else metadata_line(name, fields, keys))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
