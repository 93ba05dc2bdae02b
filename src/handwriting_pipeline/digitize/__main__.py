"""Read forms from the shell: ``python -m handwriting_pipeline.digitize IMAGE [IMAGE ...]``.

Prints the JSON of each image (one object for one image, a list for several, or one line per
image with ``--json-lines``) with the same code, parameters, credentials and engine cache as
``kedro run --pipeline digitize`` (the project's ``conf/``; run it inside the project or pass
``--project``). Logs go to stderr; ``-v`` shows them at INFO level. Exit code 1 when no image
could be read.

Examples::

    python -m handwriting_pipeline.digitize ../shared/data/hsf_top/validation/f0019_38.png
    python -m handwriting_pipeline.digitize scans/*.tif --json-lines --method rapidocr
    python -m handwriting_pipeline.digitize cards/*.png --form order_card   # another form spec
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from handwriting_pipeline.datasets.digitize import FILES_KEY, ImageInputs


def find_project(start: Path | None = None) -> Path:
    """The Kedro project around ``start`` (default: the working directory), else the one this
    package was installed from."""
    candidates = [start or Path.cwd(), *(start or Path.cwd()).parents, Path(__file__).resolve().parents[3]]
    for folder in candidates:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8"):
            return folder
    raise SystemExit("not inside a Kedro project: run from the project folder or pass --project <folder>")


def _quiet_console(verbose: bool) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.ERROR)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)


def load_plan(project: Path, overrides: dict[str, Any], verbose: bool = False):
    """The digitize plan from the project's configuration and catalog (as the pipeline builds it)."""
    with contextlib.redirect_stdout(sys.stderr):  # Kedro's start-up logging must not mix with the JSON
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        from handwriting_pipeline.digitize.core import make_plan
        from handwriting_pipeline.fields.formspec import active_form
        from handwriting_pipeline.registry import engine_class, engine_methods

        bootstrap_project(project)
        session = KedroSession.create(project_path=project, runtime_params=overrides or None)
        _quiet_console(verbose)
        catalog = session.load_context().catalog
    models = sorted({d for m in engine_methods() for d in engine_class(m).catalog_inputs.values()})
    params = dict(catalog.load("params:digitize"))
    params.update({k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("digitize.")})
    params["progress"] = False
    return make_plan(params, catalog.load("params:extract"), catalog.load("params:ensemble"),
                     catalog.load("extract_credentials"), catalog.load("extract_cache"),
                     catalog.load("ensemble_credentials"), catalog.load("ensemble_cache"),
                     datasets={m: catalog.load(m) for m in models}, form=active_form(catalog.load("params:form")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handwriting_pipeline.digitize",
                                     description="Read handwritten forms (full pages or crops) into JSON: the HSF "
                                                 "top section, or the form spec --form names.")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, TIFF incl. multi-page)")
    parser.add_argument("--method", help="cascade (default), vote, llm, or an engine name (digitize.method)")
    parser.add_argument("--engines", help="engines of the vote/llm, e.g. 'rapidocr;textract' (digitize.engines)")
    parser.add_argument("--form", help="the form read: a shipped form's name or a spec file (form; default: the "
                                       "project's, hsf_top)")
    parser.add_argument("--json-lines", action="store_true", help="one JSON object per line")
    parser.add_argument("--review", action="store_true", help="keep the doubtful fields' candidates ('review')")
    parser.add_argument("--project", type=Path, help="the Kedro project (default: found from the working directory)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level on stderr")
    args = parser.parse_args(argv)

    from handwriting_pipeline.digitize.core import digitize_records

    paths = [str(Path(p).expanduser().resolve()) for p in args.images]
    project = (args.project or find_project()).resolve()
    overrides = {f"digitize.{k}": v for k, v in (("method", args.method), ("engines", args.engines)) if v}
    if args.form:
        overrides["form"] = args.form
    plan = load_plan(project, overrides, args.verbose)
    records = []
    for record in digitize_records(plan, ImageInputs(paths), review_crops=False):
        record.pop(FILES_KEY, None)
        if not args.review:
            record.pop("review", None)
        records.append(record)
        if args.json_lines:
            print(json.dumps(record, ensure_ascii=False), flush=True)
    if not args.json_lines:
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2, ensure_ascii=False))
    return 0 if any(not r.get("error") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
