"""Style layer benchmark (not a test; issue #20): fit the field reader's style layer on a trained
reader and measure it lever by lever on the validation crops.

Usage (from the repository root; a trained reader from ``fieldreader_benchmark.py train`` or
``kedro run --pipeline train``)::

    .venv/bin/python benchmarks/fieldreader/style_benchmark.py --model data/06_models/benchmark_fieldreader

The reader's training forms split as it was trained: the first forms fit the style classifiers
(their labels, forced-aligned to their lines, give the truth), the last ``holdout_forms`` (100)
choose the weights; validation is only reported. Rows (each scored on the same validation forms):

* ``reader as today``: beam search + the lexicon saved with the model (the engine before #20);
* ``lever 3 alone``: case/dot/space variants of the reading scored by exact CTC likelihood + the
  lexicon prior (no style model);
* ``levers 1+2 decide``: the style model's own choice among the variants (weights 100: the image
  likelihood only breaks ties);
* ``lever 2 without glyph geometry + 3``: the style model on the writer/position features only;
* ``levers 1+2 without writer features + 3``: glyph geometry and position, not the other letters' case;
* ``levers 1+2+3``: glyph geometry + writer features + decoding;
* ``style layer``: the feature set of the three above that reads the held-out train forms best
  (what the train pipeline keeps, ``train_fieldreader.style.features``).

Writes benchmarks/results/fieldreader_style_ablation.{json,md}; with ``--out`` also a copy of the
model folder with the whole style layer (and the confidence calibration refitted on its readings).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import RESULTS, SHARED, load_split, machine  # noqa: E402 (benchmarks/common.py)
from fieldreader_eval import score  # noqa: E402

STYLE_KINDS = ("case only", "dots/commas only", "case + dots", "spacing only")


def style_errors(result: dict) -> int:
    """Field errors that are case, dots/commas or spacing only."""
    return sum(n for kind, n in result["errors"].items() if kind.split(": ", 1)[1] in STYLE_KINDS)


def rows_of(names, choices, weights):
    from handwriting_pipeline.fieldreader.text import fields_from_lines
    from handwriting_pipeline.fields import KEYS

    rows = []
    for name, lines in zip(names, choices):
        texts = {k: (c.ranked(weights)[0][0] if c else "") for k, c in lines.items()}
        fields = fields_from_lines(texts.get("DATE", ""), texts.get("CSZ", ""))
        rows.append({"file_name": name, **fields, **{f"{k}_conf": 1.0 for k in KEYS}})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--limit-fit", type=int, default=0, help="fit forms used (0: all; for a quick check)")
    parser.add_argument("--limit-val", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed-forms", type=int, default=100, help="validation forms timed as the engine reads")
    parser.add_argument("--note", default="", help="e.g. what else ran on the machine")
    parser.add_argument("--out", default="", help="save a copy of the model folder with its style layer here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.predict import read_forms, read_lines
    from handwriting_pipeline.fieldreader.style import (
        FEATURE_SETS,
        LineBeams,
        StyleModel,
        StyleReranker,
        collect_examples,
        fit_weights,
        line_choices,
    )
    from handwriting_pipeline.fieldreader.text import line_targets
    from handwriting_pipeline.fieldreader.tuning import calibrate, exact_share
    from handwriting_pipeline.forms.lines import cut_lines

    reader = FieldReader.load(args.model, threads=args.threads)
    train, train_forms = load_split(Path(args.train_dir))
    val, val_forms = load_split(Path(args.val_dir), args.limit_val)
    n_hold = int(reader.config.summary.get("holdout_forms", 100)) or 100
    fit, hold = train[: len(train) - n_hold][: args.limit_fit or None], train[len(train) - n_hold:]
    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None

    def cut(forms):
        return [cut_lines(image, reader.config.lines) for _, image, _ in forms]

    started = time.time()
    fit_lines, hold_lines, val_lines = cut(fit), cut(hold), cut(val)
    examples = collect_examples(reader, fit_lines, [line_targets(f) for _, _, f in fit])
    models = {name: StyleModel.fit(examples, *FEATURE_SETS[name]) for name in FEATURE_SETS}
    fit_minutes = (time.time() - started) / 60
    hold_gold = [f for _, _, f in hold]
    val_names = [n for n, _, _ in val]
    labels = val_forms.labels[val_forms.labels.file_name.isin(val_names)]
    big = {"case": 100.0, "punct": 100.0, "space": 100.0}
    variants = {  # name -> (reranker, weights: None = fitted on the held-out forms)
        "levers 3 alone (variants, CTC + lexicon prior)": (StyleReranker(reader.config.lines, None, lexicon), {}),
        "levers 1+2 decide (style model's choice)": (StyleReranker(reader.config.lines, models["all"], lexicon), big),
        "lever 2 without glyph geometry + 3": (StyleReranker(reader.config.lines, models["writer"], lexicon), None),
        "levers 1+2 without writer features + 3": (StyleReranker(reader.config.lines, models["glyphs"], lexicon), None),
        "levers 1+2+3": (StyleReranker(reader.config.lines, models["all"], lexicon), None),
    }
    by_features = {"writer": "lever 2 without glyph geometry + 3", "glyphs": "levers 1+2 without writer features + 3",
                   "all": "levers 1+2+3"}
    results = {**machine(), "model": str(args.model), "training": reader.config.summary, "n": len(val),
               "fit_forms": len(fit), "holdout_forms": len(hold), "style_rows": models["all"].summary,
               "style_fit_minutes": round(fit_minutes, 2), "rows": {}}
    if args.note:
        results["machine"]["note"] = args.note
    today = read_lines(reader, val_lines, rerank=lexicon.rerank if lexicon else None)
    results["rows"]["reader as today (lexicon)"] = score(labels, [
        {"file_name": n, **r.fields, **{f"{k}_conf": v for k, v in r.confidence.items()}} for n, r in zip(val_names, today)])
    results["rows"]["reader as today (lexicon)"]["holdout_FLA"] = round(100 * exact_share(
        read_lines(reader, hold_lines, rerank=lexicon.rerank if lexicon else None), hold_gold), 2)
    chosen = {}
    hold_read, val_read = LineBeams.read(reader, hold_lines), LineBeams.read(reader, val_lines)  # read once
    for name, (reranker, weights) in variants.items():
        hold_choices = line_choices(reader, hold_read, reranker)
        if weights is None:
            weights, _ = fit_weights(hold_choices, hold_gold)
        chosen[name] = weights
        hold_rows = rows_of([n for n, _, _ in hold], hold_choices, weights)
        hold_fla = sum(all(r[k] == g[k] for k in g) for r, g in zip(hold_rows, hold_gold)) / len(hold_gold)
        res = score(labels, rows_of(val_names, line_choices(reader, val_read, reranker), weights))
        results["rows"][name] = {**res, "weights": weights, "holdout_FLA": round(100 * hold_fla, 2)}
    # the style layer as the train pipeline keeps it: the feature set best on the held-out train forms
    best = max(by_features, key=lambda k: results["rows"][by_features[k]]["holdout_FLA"])
    results["rows"]["style layer (features chosen on held-out train forms)"] = {
        **results["rows"][by_features[best]], "features": best}
    for res in results["rows"].values():
        res["style_errors"] = style_errors(res)
    # reading speed as the engine reads (layout + lines + decoding), without and with the style layer
    full = variants[by_features[best]][0]
    full.weights = chosen[by_features[best]]
    images = [image for _, image, _ in val][: args.speed_forms or None]
    for label, rerank in (("lexicon", lexicon.rerank if lexicon else None), ("style layer", full)):
        t0 = time.time()
        read_forms(reader, images, rerank=rerank)
        results[f"forms_per_s ({label})"] = round(len(images) / (time.time() - t0), 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fieldreader_style_ablation.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    write_markdown(results)
    if args.out:
        save_copy(args, reader, models[best], full.weights, hold, hold_lines, train_forms, calibrate)
    for name, res in results["rows"].items():
        print(f"{name:48s} FLA {res['FLA']:6.2f} CBA {res['CBA']:6.2f} nocase {res['FLA_ignoring_case']:6.2f} "
              f"style errors {res['style_errors']:3d} holdout {res['holdout_FLA']:6.2f}")
    return 0


def save_copy(args, reader, model, weights, hold, hold_lines, train_forms, calibrate) -> None:
    """A copy of the model folder with the style layer and the calibration of its readings."""
    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import CONFIG_FILE
    from handwriting_pipeline.fieldreader.predict import read_lines
    from handwriting_pipeline.fieldreader.style import StyleReranker

    out = Path(args.out)
    if out.resolve() != Path(args.model).resolve():
        shutil.copytree(args.model, out, dirs_exist_ok=True)
    model.weights = dict(weights)
    model.save(out)
    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    readings = read_lines(reader, hold_lines, rerank=StyleReranker(reader.config.lines, model, lexicon))
    names = [n for n, _, _ in hold]
    reader.config.calibration = calibrate(readings, names, train_forms.subset(names).labels)
    (out / CONFIG_FILE).write_text(json.dumps(reader.config.to_json(), indent=2))


def write_markdown(results: dict) -> None:
    rows = ["| variant | FLA | CBA | FLA ignoring case | case/dots/spacing-only errors | held-out train FLA | weights |",
            "|---|--:|--:|--:|--:|--:|---|"]
    for name, r in results["rows"].items():
        weights = ", ".join(f"{k} {v:g}" for k, v in r.get("weights", {}).items()) or "-"
        rows.append(f"| {name} | {r['FLA']:.2f} | {r['CBA']:.2f} | {r['FLA_ignoring_case']:.2f} | {r['style_errors']} | "
                    f"{r['holdout_FLA']:.2f} | {weights} |")
    host = results["machine"]
    full = results["rows"]["style layer (features chosen on held-out train forms)"]
    errors = "\n".join(f"- {kind}: {count}" for kind, count in full["errors"].items())
    text = f"""# Field reader style layer: ablation ({results['date']}, {host['cpu_count']} CPUs, {host['platform']})

Model: `{results['model']}`. Style classifiers fitted on {results['fit_forms']} train forms, weights chosen on the
last {results['holdout_forms']} train forms; validation ({results['n']} forms, one form = {100 / results['n']:.2f}
FLA points, 95 % interval about ±7) only reported. Style fit (cutting lines, reading them, three
models): {results['style_fit_minutes']} min. Reading speed (layout + lines + decoding, 2 threads):
{results['forms_per_s (lexicon)']} forms/s with the lexicon, {results['forms_per_s (style layer)']} forms/s with the
style layer.{(' Note: ' + host['note']) if host.get('note') else ''}

{chr(10).join(rows)}

Field errors of the whole style layer by kind:

{errors}
"""
    (RESULTS / "fieldreader_style_ablation.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
