"""Synthetic scans to digitize (``make run``, benchmarks): full 2560x3300 HSF pages made by
pasting synthetic top-section crops where the top section lies on a page (the crop box of
``curation.crop.box``), so digitizing them exercises page registration and cropping.

``python -m handwriting_pipeline.digitize.demo FOLDER [N] [--seed S] [--crops]`` writes N pages
(or, with ``--crops``, the 2460x350 crops themselves) and a ``labels.jsonl`` with their fields.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

PAGE_SIZE = (2560, 3300)
CROP_AT = (100, 300)  # left, top of curation.crop.box


def synthetic_page(crop: Image.Image) -> Image.Image:
    """A white 1-bit page with ``crop`` at the crop box position."""
    page = Image.new("L", PAGE_SIZE, 255)
    page.paste(crop.convert("L"), CROP_AT)
    return page.convert("1")


def write_demo(folder: str | Path, n: int = 4, seed: int = 11, pages: bool = True, workers: int = 1) -> list[Path]:
    """Write ``n`` synthetic forms (pages, or crops) and ``labels.jsonl``; returns the image paths."""
    from handwriting_pipeline.synthetic.generator import SyntheticFormGenerator

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = SyntheticFormGenerator(seed=seed, blank_rate=0.0, file_prefix="page" if pages else "crop")
    paths, labels = [], []
    for name, image, fields in generator.generate(n, workers=workers):
        path = folder / name
        (synthetic_page(image) if pages else image).save(path, optimize=True)
        paths.append(path)
        labels.append(json.dumps({"file_name": name, **fields}))
    (folder / "labels.jsonl").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m handwriting_pipeline.digitize.demo")
    parser.add_argument("folder")
    parser.add_argument("n", nargs="?", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--crops", action="store_true", help="write 2460x350 crops instead of full pages")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    paths = write_demo(args.folder, args.n, args.seed, pages=not args.crops, workers=args.workers)
    print(f"{len(paths)} synthetic {'crops' if args.crops else 'pages'} in {args.folder}")


if __name__ == "__main__":
    main()
