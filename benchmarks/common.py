"""What the benchmark scripts share: where things are, when and where a result was measured, and
a labelled split as (name, image, fields) triples.

The scripts live in one folder per subject and put ``benchmarks/`` on ``sys.path`` (they are run as
``python benchmarks/<subject>/<script>.py``)
and import this module as ``common``. It imports the project only inside its functions, and never
``handwriting_pipeline.pipelines`` (benchmarks call the library, not Kedro nodes).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    """When and where a result was measured (every results JSON carries it)."""
    return {"date": dt.date.today().isoformat(),
            "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count(),
                        "python": platform.python_version(), "gpu": None}}


def load_split(folder: Path, limit: int = 0):
    """The first ``limit`` (0: all) forms of a labelled Donut-layout folder as (name, image,
    fields) triples, and the folder's :class:`~handwriting_pipeline.datasets.forms.LabelledForms`."""
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(folder)
    names = forms.labels["file_name"].tolist()[: limit or None]
    return [(n, forms.images[n], forms.fields(n)) for n in names], forms


def write_results(path: str | Path, result: dict, markdown: str) -> None:
    """``path``.json (the result) and ``path``.md (its table), and the table printed."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    print(markdown)


def rewrite_report(out: str | Path, markdown) -> int:
    """A benchmark's ``--report``: rewrite ``out``'s markdown from its results JSON with
    ``markdown(result)`` (nothing is measured again) and print it."""
    import json

    out = Path(out)
    table = markdown(json.loads(out.read_text(encoding="utf-8")))
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    return 0
