"""Synthetic scans to digitize (``make run``, benchmarks): full 2560x3300 HSF pages made by
pasting synthetic top-section crops where the top section lies on a page (the crop box of
``curation.crop.box``), so digitizing them exercises page registration and cropping; or the
pages of another form spec (``--form order_card``), rendered by
:class:`~handwriting_pipeline.synthetic.spec_forms.SpecFormGenerator` (a spec with a crop: the
crop pasted where the spec puts it on a blank page).

``python -m handwriting_pipeline.digitize.demo FOLDER [N] [--seed S] [--crops] [--form NAME]``
writes N pages (or, with ``--crops``, the crops themselves) and a ``labels.jsonl`` with their
fields; digitize them with ``kedro run --pipeline digitize --params
"form=NAME,digitize.input_dir=FOLDER"``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, load_form

PAGE_SIZE = (2560, 3300)
CROP_AT = (100, 300)  # left, top of curation.crop.box


def synthetic_page(crop: Image.Image, spec: FormSpec | None = None) -> Image.Image:
    """A white 1-bit page with ``crop`` at the crop box position (of ``spec``; None: the HSF
    form's); a spec without a crop: ``crop`` is the page."""
    size, at = (PAGE_SIZE, CROP_AT) if spec is None else (spec.page.size, (spec.page.crop or (0, 0))[:2])
    if spec is not None and spec.page.crop is None:
        return crop.convert("1")
    page = Image.new("L", tuple(size), 255)
    page.paste(crop.convert("L"), tuple(at))
    return page.convert("1")


def _forms(spec: FormSpec | None, n: int, seed: int, prefix: str, workers: int
           ) -> Iterator[tuple[str, Image.Image, dict[str, str]]]:
    if spec is None:
        from handwriting_pipeline.synthetic.generator import SyntheticFormGenerator

        return SyntheticFormGenerator(seed=seed, blank_rate=0.0, file_prefix=prefix).generate(n, workers=workers)
    from handwriting_pipeline.synthetic.spec_forms import SpecFormGenerator

    return SpecFormGenerator(spec, seed=seed, blank_rate=0.0, file_prefix=prefix).generate(n, workers=workers)


def write_demo(folder: str | Path, n: int = 4, seed: int = 11, pages: bool = True, workers: int = 1,
               form: str | Path | None = None) -> list[Path]:
    """Write ``n`` synthetic forms (pages, or crops) of ``form`` (a shipped form's name or a spec
    file; None: the HSF top section) and ``labels.jsonl``; returns the image paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = load_form(form) if form else None
    spec = None if spec is not None and spec.name == HSF_FORM else spec
    paths, labels = [], []
    for name, image, fields in _forms(spec, n, seed, "page" if pages else "crop", workers):
        path = folder / name
        (synthetic_page(image, spec) if pages else image).save(path, optimize=True)
        paths.append(path)
        labels.append(json.dumps({"file_name": name, **fields}))
    (folder / "labels.jsonl").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m handwriting_pipeline.digitize.demo")
    parser.add_argument("folder")
    parser.add_argument("n", nargs="?", type=int, default=4)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--crops", action="store_true", help="write the crops (2460x350 on the HSF form) instead of "
                                                              "full pages")
    parser.add_argument("--form", help="a shipped form's name or a spec file (default: hsf_top)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    paths = write_demo(args.folder, args.n, args.seed, pages=not args.crops, workers=args.workers, form=args.form)
    print(f"{len(paths)} synthetic {'crops' if args.crops else 'pages'} of form {args.form or HSF_FORM} in "
          f"{args.folder}")


if __name__ == "__main__":
    main()
