"""``fieldreader_benchmark.py evaluate``: score a saved field reader on the validation crops.

Variants (all from one model):
  * ``separators``: beam best reading, CITY/STATE/ZIP split at the learned ``|`` separators;
  * ``rules split``: the same readings with the separators ignored, split by rules afterwards;
  * ``+ lexicon``: re-ranked with the gazetteer/training-label lexicon (δ = ``penalty``);
  * ``+ lexicon + case prior``: also the labels' case-pattern prior;
  * the offline vote over the field reader (calibrated on the held-out train forms) + RapidOCR.

Reports FLA, CBA per key, FLA ignoring case, error kinds (case-only, dot-only, spacing, letters),
and inference speed (forms/s, layout + two lines, ONNX Runtime, 2 threads).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, load_split, machine  # noqa: E402 (benchmarks/common.py)


def error_kind(gold: str, pred: str) -> str:
    if gold == pred:
        return "right"
    if pred == "None" or gold == "None":
        return "missing/extra"
    if gold.upper() == pred.upper():
        return "case only"
    strip = lambda s: re.sub(r"[.,]", "", s)  # noqa: E731
    if strip(gold) == strip(pred):
        return "dots/commas only"
    if strip(gold).upper() == strip(pred).upper():
        return "case + dots"
    if gold.replace(" ", "") == pred.replace(" ", ""):
        return "spacing only"
    return "letters/digits"


def score(labels: pd.DataFrame, rows: list[dict]) -> dict:
    from handwriting_pipeline.fields import KEYS
    from handwriting_pipeline.metrics import aggregate, score_forms
    from handwriting_pipeline.predictions import predictions_from_records

    preds = predictions_from_records(rows)
    per_form = score_forms(labels, preds)
    out = {k: round(float(v), 2) for k, v in aggregate(per_form).items() if isinstance(v, (int, float))}
    by_name = {r["file_name"]: r for r in rows}
    kinds: Counter = Counter()
    nocase = 0
    for gold in labels.to_dict("records"):
        pred = by_name.get(gold["file_name"], {})
        ok = True
        for key in KEYS:
            kind = error_kind(gold[key], str(pred.get(key, "None")))
            if kind != "right":
                kinds[f"{key}: {kind}"] += 1
            ok &= gold[key].upper() == str(pred.get(key, "None")).upper()
        nocase += ok
    out["FLA_ignoring_case"] = round(100 * nocase / len(labels), 2)
    out["errors"] = dict(kinds.most_common())
    return out


def readings_to_rows(names, readings) -> list[dict]:
    from handwriting_pipeline.fields import KEYS

    return [{"file_name": n, **r.fields, **{f"{k}_conf": r.confidence[k] for k in KEYS}, "error": r.error}
            for n, r in zip(names, readings)]


def evaluate(args) -> int:
    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.predict import read_forms, read_lines
    from handwriting_pipeline.fieldreader.text import SEP, fields_from_lines, split_free_text
    from handwriting_pipeline.forms.lines import cut_lines

    reader = FieldReader.load(args.model, threads=args.threads)
    val, val_forms = load_split(Path(args.val_dir), args.limit)
    train, _ = load_split(Path(args.train_dir))
    holdout_n = int(reader.config.summary.get("holdout_forms", 0))
    fit_forms = train[: len(train) - holdout_n]
    labels = val_forms.labels[val_forms.labels.file_name.isin([n for n, _, _ in val])]
    names = [n for n, _, _ in val]
    started = time.time()
    cut = [cut_lines(image, reader.config.lines) for _, image, _ in val]
    plain = read_lines(reader, cut)
    seconds = time.time() - started
    results = {"model": str(args.model), "training": reader.config.summary, "n": len(val), **machine(),
               "inference_forms_per_s": round(len(val) / seconds, 2), "variants": {}}
    results["variants"]["separators"] = score(labels, readings_to_rows(names, plain))
    rules_rows = []
    for n, r in zip(names, plain):
        rules_rows.append({"file_name": n, **fields_from_lines(r.lines["DATE"], ""),
                           **split_free_text(r.lines["CSZ"].replace(SEP, " "))})
    results["variants"]["rules split"] = score(labels, rules_rows)
    for penalty in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0):
        for case_weight in (0.0, 0.5):
            lexicon = Lexicon.from_labels([f for _, _, f in fit_forms], penalty=penalty, case_weight=case_weight)
            readings = read_lines(reader, cut, rerank=lexicon.rerank)
            results["variants"][f"lexicon δ={penalty:g} case_weight={case_weight:g}"] = score(
                labels, readings_to_rows(names, readings))
    # the model as the engine runs it: the lexicon settings chosen on the held-out train forms
    chosen = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    started = time.time()
    readings = read_forms(reader, [image for _, image, _ in val], rerank=chosen.rerank if chosen else None)
    results["engine_forms_per_s"] = round(len(val) / (time.time() - started), 2)
    results["chosen"] = (f"lexicon δ={chosen.penalty:g} case_weight={chosen.case_weight:g}" if chosen
                         else "no lexicon")
    results["variants"]["engine (chosen on held-out train forms)"] = score(labels, readings_to_rows(names, readings))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fieldreader_benchmark.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    for name, res in results["variants"].items():
        print(f"{name:40s} FLA {res['FLA']:6.2f} CBA {res['CBA']:6.2f} nocase {res['FLA_ignoring_case']:6.2f}")
    print("forms/s", results["inference_forms_per_s"], "engine forms/s", results["engine_forms_per_s"],
          "chosen", results["chosen"])
    write_markdown(results)
    return 0


def write_markdown(results: dict) -> None:
    rows = ["| variant | FLA | CBA | DATE | CITY | STATE | ZIP | FLA ignoring case |", "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for name, r in results["variants"].items():
        rows.append(f"| {name} | {r['FLA']:.2f} | {r['CBA']:.2f} | {r['CBA_DATE']:.2f} | {r['CBA_CITY']:.2f} | "
                    f"{r['CBA_STATE']:.2f} | {r['CBA_ZIP']:.2f} | {r['FLA_ignoring_case']:.2f} |")
    engine = results["variants"]["engine (chosen on held-out train forms)"]
    errors = "\n".join(f"- {kind}: {count}" for kind, count in engine["errors"].items())
    training = results["training"]
    host = results["machine"]
    text = f"""# Field reader benchmark ({results['date']}, {host['cpu_count']} CPUs, {host['platform']})

Model: `{results['model']}`; training: {training.get('train_forms')} train forms
({training.get('holdout_forms')} held out for early stopping, lexicon choice and calibration),
{training.get('epochs')} epochs in {training.get('minutes')} min, stop: {training.get('stop_reason')}.
Validation: {results['n']} forms (one form = {100 / results['n']:.2f} FLA points).
Lexicon setting chosen on the held-out train forms: {results['chosen']}.
Speed (layout + two lines, ONNX Runtime, 2 threads): {results['inference_forms_per_s']} forms/s
(beam search, no lexicon), {results['engine_forms_per_s']} forms/s as the engine runs it.

{chr(10).join(rows)}

Field errors of the engine row by kind (one form can have several):

{errors}
"""
    (RESULTS / "fieldreader_benchmark.md").write_text(text)
