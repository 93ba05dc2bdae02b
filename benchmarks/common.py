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
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    """When and where a result was measured (every results JSON carries it)."""
    return {"date": dt.date.today().isoformat(),
            "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count(),
                        "python": platform.python_version(), "gpu": _gpu()}}


def _gpu() -> str | None:
    """The GPU the run could use (its name), or None."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # no torch, no driver: no GPU for this run
        return None


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


#: the engines' tables of the out-of-fold train forms and the validation forms
#: (``benchmarks/fieldreader/oof_ensemble_benchmark.py`` writes them)
OOF_TABLES = ROOT / "data" / "07_model_output" / "oof_ensemble"


def oof_vote_inputs(ensemble_dir: str | Path, fast: str) -> tuple:
    """What the benchmarks that replay the vote on the out-of-fold forms start from: the
    ``ensemble`` settings of conf/base, its vote settings with the ensemble's own calibration for
    engine ``fast``, ``{engine: predictions table}`` of :data:`OOF_TABLES` and ``{split: labels}``
    of the shared train and validation forms. SystemExit when the tables are missing."""
    import json

    import pandas as pd
    import yaml

    from handwriting_pipeline.ensemble.settings import EnsembleSettings
    from handwriting_pipeline.predictions import normalise_predictions
    from handwriting_pipeline.score import read_labels

    ensemble = EnsembleSettings.from_params(yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())
                                            ["ensemble"])
    calibration = json.loads((Path(ensemble_dir) / "fieldreader.json").read_text())["calibration"]
    vote = replace(ensemble.vote, calibration={**ensemble.vote.calibration, fast: calibration})
    tables = {p.stem: normalise_predictions(pd.read_csv(p, dtype=str, keep_default_na=False))
              for p in OOF_TABLES.glob("*.csv")}
    if fast not in tables:
        raise SystemExit(f"no {fast}.csv under {OOF_TABLES}: run benchmarks/fieldreader/oof_ensemble_benchmark.py first")
    return ensemble, vote, tables, {s: read_labels(SHARED / s) for s in ("train", "validation")}


def oof_arguments(doc: str, name: str, argv: list[str] | None = None):
    """The command line of a benchmark that replays the vote on the out-of-fold forms:
    ``--ensemble`` (the trained ensemble's folder: its calibration), ``--fast`` (its engine) and
    ``--results`` (path without suffix, default ``benchmarks/results/<name>``)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--ensemble", default="data/06_models/fieldreader_ensemble", help="its calibration")
    parser.add_argument("--fast", default="fieldreader_ensemble")
    parser.add_argument("--results", default=str(RESULTS / name), help="results path without suffix")
    return parser.parse_args(argv)
