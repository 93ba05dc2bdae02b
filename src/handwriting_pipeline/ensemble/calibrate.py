"""Learn the vote's calibration from labelled forms and engine outputs (the command line of
:func:`~handwriting_pipeline.training.calibration.fit_calibration`, which the field reader's
training also uses for its own calibration).

Prints the ``ensemble.vote.calibration`` block for ``conf/base/parameters_ensemble.yml``::

    python -m handwriting_pipeline.ensemble.calibrate --forms ../shared/data/hsf_top/train \\
        --recorded recorded_textract=../shared/data/hsf_top/ocr_outputs/textract.csv:100 \\
        --recorded recorded_azure_form_recognizer=../shared/data/hsf_top/ocr_outputs/azure_form_recognizer.csv:1

``--predictions ENGINE=table.parquet`` adds an engine from a predictions table (e.g. RapidOCR
run on train forms). Use train forms only: numbers reported on validation/test stay honest.
"""

from __future__ import annotations

import argparse

import pandas as pd
import yaml

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.recorded_csv import read_predictions_csv
from handwriting_pipeline.training.calibration import fit_calibration


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", required=True, help="labelled Donut-layout folder (the train split)")
    parser.add_argument("--recorded", action="append", default=[], metavar="ENGINE=CSV:SCALE")
    parser.add_argument("--predictions", action="append", default=[], metavar="ENGINE=PARQUET")
    args = parser.parse_args(argv)
    forms, problems = read_donut_folder(args.forms)
    names = set(forms.labels.file_name)
    tables = {}
    for spec in args.recorded:
        engine, rest = spec.split("=", 1)
        path, _, scale = rest.rpartition(":")
        tables[engine] = read_predictions_csv(path, float(scale))
    for spec in args.predictions:
        engine, path = spec.split("=", 1)
        tables[engine] = pd.read_parquet(path)
    tables = {e: t[t.file_name.isin(names)] for e, t in tables.items()}
    calibration = fit_calibration(forms.labels, tables)
    for per_key in calibration.values():
        for values in per_key.values():
            values.pop("n", None)
    print(yaml.safe_dump({"calibration": calibration}, default_flow_style=None, sort_keys=False))
    return calibration


if __name__ == "__main__":
    main()
