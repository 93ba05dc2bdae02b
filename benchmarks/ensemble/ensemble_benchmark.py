"""Field reader ensemble benchmark (not a test; issue #20, lever 5): members fine-tuned from the
trained reader with other seeds / augmentation, their CTC posteriors averaged.

Usage (from the repository root)::

    .venv/bin/python benchmarks/ensemble/ensemble_benchmark.py train --count 4 --epochs 2  # -> data/06_models/ensemble_members/
    .venv/bin/python benchmarks/ensemble/ensemble_benchmark.py measure   # -> benchmarks/results/fieldreader_ensemble.{json,md}
    .venv/bin/python benchmarks/ensemble/ensemble_benchmark.py report    # rewrite the .md from the .json

``train`` copies the trained reader (``--base``, never written), fine-tunes ``--count`` members
on the first train forms (the last ``--holdout`` held out: each member's best epoch is chosen
there) and saves each one as it finishes. ``measure`` reads the held-out train forms (which decide)
and the validation split (only reported) with the base reader, each member, the ensembles, and
the offline vote (rapidocr + the ensemble).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(BENCHMARKS), str(BENCHMARKS / "fieldreader")]  # common.py; fieldreader_eval.py, style_benchmark.py
from common import RESULTS, ROOT, SHARED, load_split, machine, write_results  # noqa: E402 (benchmarks/common.py)

BASE = ROOT / "data" / "06_models" / "benchmark_fieldreader"  # what fieldreader_benchmark.py train writes
MEMBERS = ROOT / "data" / "06_models" / "ensemble_members"


def train(args: argparse.Namespace) -> int:
    import torch

    from handwriting_pipeline.config import MembersSettings
    from handwriting_pipeline.fieldreader.members import fine_tune_member
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import prepare_lines

    torch.set_num_threads(args.threads)
    base = FieldReader.load(args.base, with_torch=True)
    forms, _ = load_split(Path(args.train_dir))
    fit, held = forms[: len(forms) - args.holdout], forms[len(forms) - args.holdout:]
    train_lines, held_lines = prepare_lines(fit, base.config.lines), prepare_lines(held, base.config.lines)
    settings = MembersSettings.from_params({"count": args.count, "epochs": args.epochs, "learning_rate": args.lr,
                                            "seeds": args.seeds, "augment": args.augment, "freeze": args.freeze,
                                            "max_minutes": args.max_minutes})
    summaries = []
    for index in range(args.first, args.count):
        started = time.time()
        member, history, reason = fine_tune_member(base, train_lines, held_lines, settings, index,
                                                   {"batch_size": 16, "progress_bar": False},
                                                   checkpoint_dir=Path(args.out) / f"ckpt_{index}")
        member.config.summary.update({"minutes": round((time.time() - started) / 60, 1), "history": history,
                                      "base": str(args.base), **machine()})
        member.save(Path(args.out) / str(index))
        summaries.append(member.config.summary)
        print(json.dumps(member.config.summary, indent=2), flush=True)
    return 0


def build_model(base: Path, members: list[Path], out: Path, selection) -> Any:
    """``out``: a copy of the base model with ``members`` under ``members/<k>/`` and the
    ensemble's knowledge (vote calibration of the averaged reading) fitted on the held-out forms.
    Returns its reference, loaded once (every reader's log-probabilities kept for the engines)."""
    from handwriting_pipeline.datasets.model import FieldReaderRef
    from handwriting_pipeline.fieldreader.knowledge import members_knowledge
    from handwriting_pipeline.fieldreader.members import MEMBERS_DIR
    from handwriting_pipeline.fieldreader.model import CONFIG_FILE
    from handwriting_pipeline.forms.lines import cut_lines

    if out.resolve() in {base.resolve(), *(m.resolve() for m in members)}:
        raise ValueError(f"--model-out {out} must be a new folder, not the base model or a member")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out, ignore=shutil.ignore_patterns(MEMBERS_DIR))
    for k, member in enumerate(members):
        shutil.copytree(member, out / MEMBERS_DIR / str(k), ignore=shutil.ignore_patterns("ckpt_*"))
    ref = FieldReaderRef.from_path(out)
    reader = ref.bundle()
    for each in (reader, *reader.members):
        memoize_log_probs(each)
    held = selection.choose
    names = held.labels["file_name"].tolist()
    lines = [cut_lines(held.images[n], reader.config.lines) for n in names]
    reader.config.members = members_knowledge(reader, lines, [held.fields(n) for n in names], names, held.labels)
    (out / CONFIG_FILE).write_text(json.dumps(reader.config.to_json(), indent=2))
    return ref


def memoize_log_probs(reader: Any) -> None:
    """Keep each line's log-probabilities (by its pixels): the ensembles of 2, 3 ... members read
    every line once per reader, not once per ensemble (a benchmark's shortcut, same numbers: a
    line's reading does not depend on its batch)."""
    import hashlib

    memo, compute = {}, reader.log_probs

    def log_probs(arrays):
        keys = [hashlib.sha1(a.tobytes()).hexdigest() + str(a.shape) for a in arrays]
        todo = list(dict.fromkeys(k for k in keys if k not in memo))
        if todo:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            memo.update(zip(todo, compute([arrays[first[k]] for k in todo])))
        return [memo[k] for k in keys]

    reader.log_probs = log_probs


def measure(args: argparse.Namespace) -> int:
    import yaml
    from fieldreader_eval import score  # benchmarks/fieldreader/fieldreader_eval.py
    from style_benchmark import style_errors  # benchmarks/fieldreader/style_benchmark.py
    from vote_benchmark import read_with, registry_engine  # benchmarks/ensemble/vote_benchmark.py

    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
    from handwriting_pipeline.engines.fieldreader_ensemble import FieldReaderEnsembleEngine
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.selection import split_for_selection
    from handwriting_pipeline.training.calibration import fit_calibration

    started = time.time()
    selection = split_for_selection(read_donut_folder(args.train_dir, split="train")[0],
                                    read_donut_folder(args.val_dir, split="validation")[0], args.holdout,
                                    limit_report=args.limit)
    choose_names = selection.choose.labels["file_name"].tolist()
    report_names = selection.report.labels["file_name"].tolist()
    images = {**{n: selection.choose.images[n] for n in choose_names},
              **{n: selection.report.images[n] for n in report_names}}
    members = [Path(m) for m in args.members] or sorted(
        (p for p in MEMBERS.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    ref = build_model(Path(args.base), members, Path(args.model_out), selection)
    model = ref.bundle()
    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    vote_params = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    cache = ResponseCache(args.cache)
    engines = {"fieldreader": FieldReaderEngine.from_model(ref, threads=args.threads, style=args.style),
               **{f"member_{k}": FieldReaderEngine.from_model(m, threads=args.threads, style=False)
                  for k, m in enumerate(members)},
               **{f"ensemble_{n}": FieldReaderEnsembleEngine.from_model(ref, members=n - 1, threads=args.threads,
                                                                        style=args.style)
                  for n in range(2, len(members) + 2)},
               "rapidocr": registry_engine("rapidocr", extract)}
    tables, seconds = {}, {}
    for method, engine in engines.items():
        logging.info("reading %d forms with %s", len(images), method)
        tables[method], seconds[method] = read_with(engine, choose_names + report_names, images, cache)

    def split_score(table, labels, names):
        return score(labels, table[table["file_name"].isin(names)].to_dict("records"))

    def both(table) -> dict:
        held = split_score(table, selection.choose.labels, choose_names)
        val = split_score(table, selection.report.labels, report_names)
        return {"holdout": {**held, "style_errors": style_errors(held)},
                "validation": {**val, "style_errors": style_errors(val)}}

    readings = {m: {**both(t), "seconds_per_form": round(seconds[m], 4)} for m, t in tables.items()}
    ensembles = [m for m in tables if m.startswith("ensemble_")]
    chosen = max(ensembles, key=lambda m: (readings[m]["holdout"]["FLA"], readings[m]["holdout"]["CBA"], -len(m)))
    # the vote: every engine's calibration refitted on the held-out train forms (the parameters'
    # rapidocr calibration is shown too, as the pipeline has it)
    refit = fit_calibration(selection.choose.labels, {e: t[t["file_name"].isin(choose_names)] for e, t in tables.items()})
    for per_key in refit.values():
        for values in per_key.values():
            values.pop("n", None)
    as_saved = {**vote_params["calibration"], "fieldreader": model.config.calibration,
                **{m: model.config.members["calibration"] for m in ensembles}}
    votes = {}
    members_as_inputs = ("rapidocr", "fieldreader", *(f"member_{k}" for k in range(len(members))))
    for combo, calibration, label in [
        (("rapidocr", "fieldreader"), as_saved, "calibration as saved (parameters_ensemble.yml + model)"),
        (("rapidocr", "fieldreader"), refit, "calibration refitted on the held-out train forms"),
        *((("rapidocr", m), refit, "calibration refitted on the held-out train forms") for m in ensembles),
        (("rapidocr", chosen), as_saved, "calibration as saved (parameters_ensemble.yml + model)"),
        (("fieldreader", chosen), refit, "calibration refitted on the held-out train forms"),
        (members_as_inputs, refit, "calibration refitted on the held-out train forms"),
    ]:
        voted, _ = vote({e: tables[e] for e in combo}, {**vote_params, "calibration": calibration})
        row = both(voted)
        best = {s: max(combo, key=lambda e: readings[e][s]["FLA"]) for s in ("holdout", "validation")}
        for split, labels in (("holdout", selection.choose.labels), ("validation", selection.report.labels)):
            row[split]["fields_fixed_broken"] = fixed_broken(labels, tables[best[split]], voted)
        row.update({"inputs": list(combo), "calibration": label, "best_single": best,
                    "gain_over_best_single": {s: round(row[s]["FLA"] - readings[best[s]][s]["FLA"], 2)
                                              for s in ("holdout", "validation")}})
        votes[" + ".join(combo) + (" (saved calibration)" if calibration is as_saved else "")] = row
    result = {"benchmark": "ensemble_benchmark", **machine(), "note": args.note,
              "command": "python benchmarks/ensemble/ensemble_benchmark.py " + " ".join(sys.argv[1:]),
              "base": args.base, "members": [str(m) for m in members], "model_out": args.model_out,
              "member_training": [json.loads((m / "fieldreader.json").read_text())["summary"] for m in members],
              "selection": {"holdout_train_forms": len(choose_names), "validation_forms": len(report_names),
                            "chosen_on_holdout": ["the ensemble size", "every engine's vote calibration"]},
              "style_layer": args.style, "chosen_ensemble": chosen, "ensemble_knowledge": {
                  k: v for k, v in model.config.members.items() if k != "members"},
              "readings": readings, "votes": votes, "calibration_refit": refit,
              "saved_calibration_check": calibration_check(tables, selection, vote_params),
              "minutes": round((time.time() - started) / 60, 1)}
    for v in result["member_training"]:
        v.pop("history", None)
    write_results(args.results, result, markdown(result))
    return 0


def fixed_broken(labels, single, voted) -> list[int]:
    """[fields the vote reads right that the single reader got wrong, fields it breaks]."""
    from handwriting_pipeline.fields import KEYS

    gold = labels.set_index("file_name")
    one, both = single.set_index("file_name"), voted.set_index("file_name")
    fixed = broken = 0
    for name in gold.index:
        for key in KEYS:
            right_one = str(one.loc[name, key]) == str(gold.loc[name, key])
            right_vote = str(both.loc[name, key]) == str(gold.loc[name, key])
            fixed, broken = fixed + (right_vote and not right_one), broken + (right_one and not right_vote)
    return [fixed, broken]


def calibration_check(tables: dict, selection, vote_params: dict) -> dict:
    """Is the parameters' calibration of an engine stale? Per engine and field on the held-out
    train forms: the mean P(right apart from case) it predicts and how often the engine was right."""
    from handwriting_pipeline.ensemble.vote import engine_probability
    from handwriting_pipeline.ensemble.vote import vote_params as settings_of
    from handwriting_pipeline.fields import KEYS

    settings = settings_of(vote_params)
    gold = selection.choose.labels.set_index("file_name")
    out = {}
    for engine in (e for e in tables if e in vote_params["calibration"]):
        table = tables[engine][tables[engine]["file_name"].isin(gold.index)].set_index("file_name")
        out[engine] = {}
        for key in KEYS:
            predicted = [engine_probability(engine, key, str(table.loc[n, key]), float(table.loc[n, f"{key}_conf"]),
                                            settings) for n in table.index]
            right = [str(table.loc[n, key]).upper() == str(gold.loc[n, key]).upper() for n in table.index]
            out[engine][key] = {"predicted": round(float(sum(predicted) / len(predicted)), 3),
                                "right": round(sum(right) / len(right), 3), "n": len(right)}
    return out


def markdown(result: dict) -> str:
    head = ("| reading | held-out FLA | held-out CBA | FLA | CBA | FLA ignoring case | case/dots/spacing-only errors "
            "| FLA gain over its best single input (held-out / validation) | forms/s |")
    rows = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]

    def line(name, r, gain="", speed=""):
        h, v = r["holdout"], r["validation"]
        return (f"| {name} | {h['FLA']:.1f} | {h['CBA']:.2f} | {v['FLA']:.2f} | {v['CBA']:.2f} | "
                f"{v['FLA_ignoring_case']:.2f} | {v['style_errors']} | {gain} | {speed} |")

    for name, r in result["readings"].items():
        mark = " **(chosen)**" if name == result["chosen_ensemble"] else ""
        speed = (f"≈ 1/{name.split('_')[1]} of fieldreader" if name.startswith("ensemble_")
                 else f"{1 / r['seconds_per_form']:.1f}" if r["seconds_per_form"] > 0.01 else "cached")
        rows.append(line(name + mark, r, speed=speed))
    for name, r in result["votes"].items():
        g = r["gain_over_best_single"]
        b = r["best_single"]
        fb = {k: "{}+/{}-".format(*r[k]["fields_fixed_broken"]) for k in ("holdout", "validation")}
        rows.append(line(f"vote: {name}", r, f"{g['holdout']:+.1f} (vs {b['holdout']}; fields {fb['holdout']}) / "
                                             f"{g['validation']:+.2f} (vs {b['validation']}; fields {fb['validation']})"))
    members = "; ".join(
        f"member_{k}: seed {m['seed']}, augment {m['augment']}, lr {m['learning_rate']}, {m['epochs']} epochs, "
        f"{m['minutes']} min" if "seed" in m else f"member_{k}: `{result['members'][k]}`"
        for k, m in enumerate(result["member_training"]))
    n = result["selection"]["validation_forms"]
    check = "; ".join(f"{e} " + ", ".join(f"{k} {v['predicted']:.2f}/{v['right']:.2f}" for k, v in per.items())
                      for e, per in result["saved_calibration_check"].items())
    return f"""# Field reader ensemble ({result['date']}, {result['machine']['cpu_count']}-core CPU, no GPU)

`{result['command']}` ({result['minutes']} min). {result['note']}.
Base reader `{result['base']}`; members fine-tuned from it ({members}). `ensemble_n` = the base reader and
its first n-1 members, per-frame CTC posteriors averaged, decoded with the base reader's lexicon
(style layer: {result['style_layer']}). Chosen on the last {result['selection']['holdout_train_forms']}
train forms (held out from all training): the ensemble size (**{result['chosen_ensemble']}**) and every
engine's vote calibration. Validation: {n} forms, only reported (one form = {100 / max(1, n):.2f} FLA
points; 95 % interval about ±7 points).

{chr(10).join(rows)}

Fields `a+/b-`: the vote reads a fields right that its best single input got wrong, and b fields wrong that it got right.
Saved vote calibration (`parameters_ensemble.yml`) against the held-out train forms, per field mean predicted
P(right apart from case) / share right: {check}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--base", default=str(BASE))
    t.add_argument("--train-dir", default=str(SHARED / "train"))
    t.add_argument("--holdout", type=int, default=100)
    t.add_argument("--count", type=int, default=2)
    t.add_argument("--first", type=int, default=0, help="skip the members before this one (already trained)")
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    t.add_argument("--augment", type=float, nargs="+", default=[1.0, 1.5, 1.5, 1.5])
    t.add_argument("--freeze", type=float, default=0.4)
    t.add_argument("--max-minutes", type=float, default=30.0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out", default=str(MEMBERS))
    m = sub.add_parser("measure")
    m.add_argument("--base", default=str(BASE))
    m.add_argument("--members", nargs="*", default=[], help="member folders (default: data/06_models/ensemble_members/<k>)")
    m.add_argument("--model-out", default=str(ROOT / "data" / "06_models" / "fieldreader_ensemble"),
                   help="the base model + members + the ensemble's calibration, usable by the pipeline")
    m.add_argument("--train-dir", default=str(SHARED / "train"))
    m.add_argument("--val-dir", default=str(SHARED / "validation"))
    m.add_argument("--holdout", type=int, default=100)
    m.add_argument("--limit", type=int, default=0, help="smoke runs: N validation forms")
    m.add_argument("--style", action=argparse.BooleanOptionalAction, default=True)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--cache", default=str(ROOT / "data" / "02_intermediate" / "ensemble_benchmark_cache"))
    m.add_argument("--note", default="", help="e.g. what else ran on the machine")
    m.add_argument("--results", default=str(RESULTS / "fieldreader_ensemble"))
    r = sub.add_parser("report", help="rewrite the .md of a measured .json (after a change of the table's layout)")
    r.add_argument("--results", default=str(RESULTS / "fieldreader_ensemble"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    if args.command == "train":
        return train(args)
    if args.command == "report":
        result = json.loads(Path(args.results).with_suffix(".json").read_text())
        Path(args.results).with_suffix(".md").write_text(markdown(result), encoding="utf-8")
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
