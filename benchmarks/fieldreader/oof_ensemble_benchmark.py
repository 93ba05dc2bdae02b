"""The fold readers as one reader, its choices made on the out-of-fold forms, and what it reads
(not a test; the targets table of "Choices that hold on new forms").

From the fold readers of ``crossfit_benchmark.py`` (every complete fold under ``--crossfit``):

1. the ensemble's choices on the out-of-fold train forms (``fieldreader.oof.build_ensemble``:
   the lexicon grid against plain beam search, the style layer, the calibration), each with its
   95 % paired bootstrap interval; the ensemble is saved to ``--out`` (by default where
   ``kedro run --pipeline evaluate`` finds ``fieldreader_ensemble_model``);
2. on the out-of-fold forms: the fold readers as the choices decode them, RapidOCR, and their
   offline vote (the vote's gain over the reader alone, paired interval);
3. on the validation crops (only reported): the ensemble of 1, 3 and all members, plain and with
   the chosen decoding, and its offline vote with RapidOCR (the ensemble's calibration).

Usage (from the repository root, after ``crossfit_benchmark.py``; ~25 min on 2 cores, RapidOCR
answers cached in data/02_intermediate/extract_cache)::

    .venv/bin/python benchmarks/fieldreader/oof_ensemble_benchmark.py

Writes ``benchmarks/results/fieldreader_oof_ensemble.{json,md}`` and the vote's inputs, the
out-of-fold train forms and the validation forms in one predictions table per engine
(``data/07_model_output/oof_ensemble/{fieldreader_ensemble,rapidocr}.csv``), for the guarantee
benchmark::

    .venv/bin/python benchmarks/review/guarantee_benchmark.py --engines "" \
        --predictions fieldreader_ensemble=data/07_model_output/oof_ensemble/fieldreader_ensemble.csv \
        --predictions rapidocr=data/07_model_output/oof_ensemble/rapidocr.csv \
        --calibration fieldreader_ensemble=data/06_models/fieldreader_ensemble --out benchmarks/results/guarantee_oof.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, write_results  # noqa: E402

NAME = "fieldreader_oof_ensemble"
TABLES = ROOT / "data" / "07_model_output" / "oof_ensemble"
TARGETS = {"ensemble_FLA": 63.0, "vote_FLA": 65.0, "CBA": 96.5, "oof_within": 2.0}


def _score(labels, table) -> dict:
    from handwriting_pipeline.metrics import aggregate, score_forms

    found = aggregate(score_forms(labels, table))
    return {k: round(float(found[k]), 2) for k in ("FLA", "CBA") if k in found}


def _per_form(labels, table):
    """1 per form whose four fields are all right (the paired bootstrap's per-form score)."""
    from handwriting_pipeline.metrics import score_forms

    scores = score_forms(labels, table).set_index("file_name")
    return (scores["exact"] if "exact" in scores else scores["FLA"] / 100).astype(float)


def _interval(candidate, baseline) -> dict:
    from handwriting_pipeline.selection import paired_bootstrap

    found = paired_bootstrap(candidate, baseline)
    return {"gain": round(100 * found.mean, 2), "low": round(100 * found.low, 2), "high": round(100 * found.high, 2),
            "forms": found.forms}


def _fold_parts(folder: Path):
    """{fold: reader} and the out-of-fold readings of every complete fold under ``folder``."""
    import pandas as pd

    from handwriting_pipeline.fieldreader.crossfit import MODEL_DIR, READINGS_FILE, is_complete, load_readings
    from handwriting_pipeline.fieldreader.model import FieldReader

    found = sorted((int(p.name.split("_")[1]), p) for p in folder.glob("fold_*") if is_complete(p))
    readers = {k: FieldReader.load(p / MODEL_DIR) for k, p in found}
    return readers, pd.concat([load_readings(p / READINGS_FILE) for _, p in found], ignore_index=True)


def _read(reader, forms, names, beam: int, rerank):
    from handwriting_pipeline.fieldreader.oof import predictions_table
    from handwriting_pipeline.fieldreader.predict import read_forms

    started = time.time()
    readings = read_forms(reader, [forms.images[n] for n in names], beam=beam, rerank=rerank)
    return predictions_table(dict(zip(names, readings))), round((time.time() - started) / max(len(names), 1), 3)


def _rapidocr(labels, images, workers: int):
    import yaml

    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.engines.rapidocr_engine import RapidOCREngine
    from handwriting_pipeline.engines.runner import run_engine

    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    engine = RapidOCREngine(**{**dict(extract.get("rapidocr") or {}), "threads": 1})
    cache = ResponseCache(ROOT / "data" / "02_intermediate" / "extract_cache")
    return run_engine(engine, labels["file_name"].tolist(), images, cache=cache, workers=workers)


def _vote(tables: dict, calibration: dict):
    import yaml

    from handwriting_pipeline.ensemble.vote import vote

    params = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    params["calibration"] = {**params.get("calibration", {}), "fieldreader_ensemble": calibration}
    return vote(tables, params)[0]


def _markdown(result: dict) -> str:
    oof, val = result["oof"], result["validation"]
    lines = [f"# Field reader ensemble: choices on the out-of-fold forms ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. {result['members']} fold readers "
             f"(folds {result['folds']}); {oof['forms']} out-of-fold train forms (one form = "
             f"{100 / max(oof['forms'], 1):.2g} FLA point), {val['forms']} validation forms (one form = "
             f"{100 / max(val['forms'], 1):.2g} point, 95 % interval about ±7).", "",
             "## Choices on the out-of-fold forms", "",
             "| component | on | FLA without | FLA with | gain [95 % paired interval] | note |", "|---|---|--:|--:|---|---|"]
    for row in result["choices"]:
        missing = row["gain"] is None or row["gain"] != row["gain"]
        gain = "–" if missing else f"{row['gain']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"
        lines.append(f"| {row['component']} {row['setting']} | {'on' if row['on'] else 'off'} | {row['fla_without']} | "
                     f"{row['fla_with']} | {gain} | {row['note']} |")
    vote = oof["vote_gain"]
    lines += ["", f"Offline vote (fold readers as chosen + RapidOCR) on the out-of-fold forms: FLA {oof['vote']['FLA']}, "
              f"CBA {oof['vote']['CBA']}; reader alone {oof['reader']['FLA']} / {oof['reader']['CBA']}; RapidOCR alone "
              f"{oof['rapidocr']['FLA']}. Vote minus reader: {vote['gain']:+.2f} [{vote['low']:+.2f}, {vote['high']:+.2f}].",
              "", "## Validation (only reported)", "", "| reader | decoding | FLA | CBA | seconds / form |",
              "|---|---|--:|--:|--:|"]
    for row in val["rows"]:
        lines.append(f"| {row['reader']} | {row['decoding']} | {row['FLA']} | {row['CBA']} | {row['seconds_per_form']} |")
    lines += ["", f"All members minus one member (chosen decoding), FLA points: {val['members_gain']['gain']:+.2f} "
              f"[{val['members_gain']['low']:+.2f}, {val['members_gain']['high']:+.2f}]; the vote with RapidOCR minus "
              f"the ensemble alone: {val['vote_gain']['gain']:+.2f} [{val['vote_gain']['low']:+.2f}, "
              f"{val['vote_gain']['high']:+.2f}] (95 % paired bootstrap over forms).", "",
              "Out of fold every form is read by one fold reader (no out-of-fold reading by the ensemble exists), "
              "so the out-of-fold targets compare with one member on validation.", "",
              "## Targets", "", "| target | wanted | measured | met |", "|---|--:|--:|---|"]
    for row in result["targets"]:
        lines.append(f"| {row['target']} | {row['wanted']} | {row['measured']} | {'yes' if row['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crossfit", default="data/06_models/fieldreader_crossfit", help="crossfit model folder")
    parser.add_argument("--out", default="data/06_models/fieldreader_ensemble", help="where the ensemble is saved")
    parser.add_argument("--workers", type=int, default=2, help="RapidOCR processes")
    parser.add_argument("--limit", type=int, default=0, help="only the first N forms per fold and split (smoke run)")
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.ensemble import EnsembleReader
    from handwriting_pipeline.fieldreader.oof import build_ensemble, choices_table
    from handwriting_pipeline.fieldreader.tuning import saved_rerank

    started = time.time()
    block = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    beam = int(block["crossfit"]["beam"])
    readers, readings = _fold_parts(Path(args.crossfit))
    if not readers:
        parser.error(f"no complete fold under {args.crossfit}: run crossfit_benchmark.py first")
    if args.limit:
        keep = set(readings.drop_duplicates("file_name").groupby("fold").head(args.limit)["file_name"])
        readings = readings[readings["file_name"].isin(keep)]
    train, _ = read_donut_folder(SHARED / "train")
    ensemble, oof_table = build_ensemble(readers, train, readings, block)
    ensemble.save(args.out)
    choices = choices_table(ensemble).to_dict("records")
    TABLES.mkdir(parents=True, exist_ok=True)

    # the out-of-fold forms: the fold readers as chosen, RapidOCR, their vote
    oof_labels = train.labels.set_index("file_name").loc[oof_table["file_name"]].reset_index()
    rapid_oof = _rapidocr(oof_labels, train.images, args.workers)
    vote_oof = _vote({"fieldreader_ensemble": oof_table, "rapidocr": rapid_oof}, ensemble.config.calibration)
    oof = {"forms": len(oof_table), "reader": _score(oof_labels, oof_table), "rapidocr": _score(oof_labels, rapid_oof),
           "vote": _score(oof_labels, vote_oof),
           "vote_gain": _interval(_per_form(oof_labels, vote_oof), _per_form(oof_labels, oof_table))}
    print("out-of-fold:", oof)

    # validation (only reported)
    validation, _ = read_donut_folder(SHARED / "validation")
    names = validation.labels["file_name"].tolist()[: args.limit or None]
    val_labels = validation.labels.set_index("file_name").loc[names].reset_index()
    members = list(ensemble.readers)
    rerank = saved_rerank(ensemble, lexicon=True, style=False)
    rows, tables = [], {}
    sizes = sorted({1, min(3, len(members)), len(members)})
    for size in sizes:
        reader = EnsembleReader(members[:size], ensemble.config)
        for decoding, how in (("plain", None), ("chosen", rerank)):
            if decoding == "plain" and size not in (1, len(members)):
                continue
            table, seconds = _read(reader, validation, names, beam, how)
            tables[(size, decoding)] = table
            rows.append({"reader": f"{size} member{'s' if size > 1 else ''}", "members": size, "decoding": decoding,
                         **_score(val_labels, table), "seconds_per_form": seconds})
            print(rows[-1])
    best, single = tables[(len(members), "chosen")], tables[(1, "chosen")]
    rapid_val = _rapidocr(val_labels, validation.images, args.workers)
    vote_val = _vote({"fieldreader_ensemble": best, "rapidocr": rapid_val}, ensemble.config.calibration)
    vote_single = _vote({"fieldreader_ensemble": single, "rapidocr": rapid_val}, ensemble.config.calibration)
    import pandas as pd

    for name, (on_oof, on_val) in {"fieldreader_ensemble": (oof_table, best), "rapidocr": (rapid_oof, rapid_val)}.items():
        pd.concat([on_oof, on_val], ignore_index=True).to_csv(TABLES / f"{name}.csv", index=False)
    rows.append({"reader": "rapidocr", "members": 0, "decoding": "–", **_score(val_labels, rapid_val),
                 "seconds_per_form": None})
    rows.append({"reader": "vote: 1 member + rapidocr", "members": 1, "decoding": "chosen",
                 **_score(val_labels, vote_single), "seconds_per_form": None})
    rows.append({"reader": f"vote: {len(members)} members + rapidocr", "members": len(members), "decoding": "chosen",
                 **_score(val_labels, vote_val), "seconds_per_form": None})
    val = {"forms": len(names), "rows": rows,
           "members_gain": _interval(_per_form(val_labels, best), _per_form(val_labels, tables[(1, "chosen")]))}
    ens_val, vote_score = _score(val_labels, best), _score(val_labels, vote_val)
    # like for like: out of fold every form is read by one fold reader, so the out-of-fold figures
    # compare with one member on validation (the ensemble has no out-of-fold reading)
    one_val, one_vote = _score(val_labels, single), _score(val_labels, vote_single)
    val["vote_gain"] = _interval(_per_form(val_labels, vote_val), _per_form(val_labels, best))
    targets = [
        {"target": "validation: field reader ensemble FLA", "wanted": TARGETS["ensemble_FLA"], "measured": ens_val["FLA"]},
        {"target": "validation: offline vote FLA", "wanted": TARGETS["vote_FLA"], "measured": vote_score["FLA"]},
        {"target": "validation: offline vote CBA", "wanted": TARGETS["CBA"], "measured": vote_score["CBA"]},
        {"target": "out-of-fold vs validation, one fold reader as chosen: FLA within 2 points",
         "wanted": TARGETS["oof_within"], "measured": round(abs(oof["reader"]["FLA"] - one_val["FLA"]), 2)},
        {"target": "out-of-fold vs validation, vote of one fold reader + RapidOCR: FLA within 2 points",
         "wanted": TARGETS["oof_within"], "measured": round(abs(oof["vote"]["FLA"] - one_vote["FLA"]), 2)},
    ]
    for row in targets:
        row["met"] = bool(row["measured"] <= row["wanted"]) if "within" in row["target"] else bool(
            row["measured"] >= row["wanted"])
    result = {**machine(), "command": "python benchmarks/fieldreader/oof_ensemble_benchmark.py " + " ".join(sys.argv[1:]),
              "members": len(members), "folds": sorted(readers), "beam": beam, "choices": choices, "oof": oof,
              "validation": val, "targets": targets, "ensemble_dir": args.out,
              "minutes": round((time.time() - started) / 60, 1)}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
