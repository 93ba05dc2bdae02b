"""How well the field reader learns a form it has never seen, from its spec alone (not a test).

Renders labelled forms of a spec with the synthetic generator (``SpecFormGenerator``: values per
field type, real MNIST digits, OFL handwriting fonts), fine-tunes the field reader on ``--train``
of them with the project's recipe (``fieldreader.recipe.fine_tune``, early stopping on
``--holdout`` more), and reads ``--validation`` forms rendered with another seed: FLA, CBA and
per field the share read exactly and the share right once normalized by the field's type.
Synthetic forms only: it measures what the spec, the line finding, the per-form alphabet and the
training recipe give together, not accuracy on real handwriting of that form.

Usage::

    .venv/bin/python benchmarks/forms/form_reader_benchmark.py --form order_card --train 400 --epochs 8

Writes ``benchmarks/results/form_reader_<form>.{json,md}``; the trained reader stays in ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, machine, rewrite_report, write_results  # noqa: E402

TRAIN_SEED, VALIDATION_SEED = 1, 2


def _forms(spec, seed: int, n: int, start: int = 0):
    """``n`` rendered forms as LabelledForms (file names unique per seed)."""
    import pandas as pd

    from handwriting_pipeline.datasets.forms import LabelledForms
    from handwriting_pipeline.synthetic import SpecFormGenerator

    rows, images = [], {}
    for name, image, fields in SpecFormGenerator(spec, seed=seed).generate(n, start=start, workers=1):
        rows.append({"file_name": name, **fields})
        images[name] = image
    return LabelledForms(pd.DataFrame(rows), images, keys=spec.keys)


def _markdown(result: dict) -> str:
    n = result["validation_forms"]
    lines = [f"# The field reader on a new form: '{result['form']}' ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. Synthetic forms rendered from the "
             f"spec: fine-tuned on {result['train_forms']} (early stopping on {result['holdout_forms']} more), "
             f"{result['epochs']} epochs at most ({result['stop_reason']}), {result['train_minutes']} min; read on "
             f"{n} forms of another seed (one form = {100 / max(n, 1):.2g} FLA points).", "",
             f"**FLA {result['FLA']:.2f}** [95 % interval {result['FLA_low']:.2f}, {result['FLA_high']:.2f}], "
             f"CBA {result['CBA']:.2f}; all fields right once normalized by type: {result['FLA_normalized']:.2f}.", "",
             "| field | type | read exactly (%) | right once normalized (%) | CBA |", "|---|---|--:|--:|--:|"]
    for row in result["fields"]:
        lines.append(f"| {row['field']} | {row['type']} | {row['exact']:.1f} | {row['normalized']:.1f} | {row['CBA']:.2f} |")
    lines += ["", "Stock recognizer before fine-tuning (same forms): "
              f"FLA {result['stock']['FLA']:.2f}, CBA {result['stock']['CBA']:.2f}."]
    return "\n".join(lines) + "\n"


def _scores(spec, forms, readings) -> tuple[dict, list[dict]]:
    import numpy as np
    import pandas as pd

    from handwriting_pipeline.fields.types import form_context, type_of
    from handwriting_pipeline.metrics import aggregate, score_forms

    names = forms.labels["file_name"].tolist()
    predictions = pd.DataFrame([{"file_name": n, **r.fields} for n, r in zip(names, readings)])
    per_form = score_forms(forms.labels, predictions, spec.keys)
    totals = aggregate(per_form, spec.keys)
    rows, all_right = [], np.ones(len(names), dtype=bool)
    for field in spec.fields:
        kind = type_of(field)
        exact, normal = [], []
        for n, r in zip(names, readings):
            gold = forms.fields(n)
            exact.append(r.fields[field.name] == gold[field.name])
            want = kind.normalize(gold[field.name], form_context(spec, gold))
            got = kind.normalize(r.fields[field.name], form_context(spec, r.fields))
            normal.append(got == want if want is not None else r.fields[field.name] == gold[field.name])
        all_right &= np.array(normal)
        rows.append({"field": field.name, "type": field.type, "exact": 100 * float(np.mean(exact)),
                     "normalized": 100 * float(np.mean(normal)), "CBA": float(totals[f"CBA_{field.name}"])})
    return {**totals, "FLA_normalized": 100 * float(all_right.mean()), "exact_per_form": per_form["exact"].tolist()}, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", default="order_card", help="a shipped form's name or a spec file")
    parser.add_argument("--train", type=int, default=400, help="rendered forms to fine-tune on")
    parser.add_argument("--holdout", type=int, default=60, help="rendered forms for early stopping")
    parser.add_argument("--validation", type=int, default=200, help="rendered forms read (another seed)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "data" / "06_models" / "form_reader_benchmark"))
    parser.add_argument("--results", default="", help="results path without suffix (default: form_reader_<form>)")
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from handwriting_pipeline.fieldreader import recipe
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.predict import read_forms
    from handwriting_pipeline.fields.formspec import load_form
    from handwriting_pipeline.selection import paired_bootstrap

    spec = load_form(args.form)
    results = Path(args.results or RESULTS / f"form_reader_{spec.name}")
    if args.report:
        return rewrite_report(results.with_suffix(".json"), _markdown)
    torch.set_num_threads(args.threads)
    print(f"rendering {args.train + args.holdout} + {args.validation} '{spec.name}' forms", flush=True)
    train = _forms(spec, TRAIN_SEED, args.train + args.holdout)
    validation = _forms(spec, VALIDATION_SEED, args.validation)
    names = train.labels["file_name"].tolist()
    split = {"fit": names[: args.train], "holdout": names[args.train:]}
    params = {"holdout_forms": args.holdout, "checkpoint_dir": str(Path(args.out) / "checkpoints"), "style": {"enabled": False},
              "trainer": {"epochs": args.epochs, "max_minutes": args.max_minutes, "progress_bar": False}}
    images = [validation.images[n] for n in validation.labels["file_name"]]
    stock, _ = _scores(spec, validation, read_forms(FieldReader.stock(args.form), images))
    started = time.time()
    reader, history = recipe.fine_tune(train, split, params, args.form)
    minutes = (time.time() - started) / 60
    reader.save(args.out)
    totals, rows = _scores(spec, validation, read_forms(FieldReader.load(args.out), images))
    interval = paired_bootstrap(totals.pop("exact_per_form"), [0.0] * args.validation)  # the mean's own interval
    low, high = interval.low, interval.high
    stock.pop("exact_per_form")
    result = {**machine(), "command": " ".join(["python", *sys.argv]), "form": spec.name, "fields_in_form": list(spec.keys),
              "train_forms": args.train, "holdout_forms": args.holdout, "validation_forms": args.validation,
              "epochs": len(history), "stop_reason": reader.config.summary.get("stop_reason", ""),
              "train_minutes": round(minutes, 1), "FLA": totals["FLA"], "FLA_low": 100 * low, "FLA_high": 100 * high,
              "CBA": totals["CBA"], "FLA_normalized": totals["FLA_normalized"], "fields": rows,
              "stock": {"FLA": stock["FLA"], "CBA": stock["CBA"]}, "model": str(args.out)}
    write_results(results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
