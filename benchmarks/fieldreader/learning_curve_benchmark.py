"""How many forms to label before the field reader pays (not a test; issue #27 item 4): the
reader's FLA on the validation crops after fine-tuning on N labelled train forms, for N in
``--sizes`` (default 50 100 200 400 1300), the out-of-fold reader of fold 0 when it is there, and
the stock recognizer (0 forms, plain beam search; ``--no-stock`` leaves it out) as the floor.

The forms:

- **held out** (``--holdout-forms``, 100): drawn (seeded) from crossfit fold 0's forms
  (``crossfit.assign_folds``, folds 5 and seed 0 as the fold readers: a writer's forms share a
  fold), so they are writer-disjoint from every training subset; every point early-stops on
  them (best ``val_cer`` epoch restored) and chooses its lexicon setting on them;
- **training subsets**: nested (the 50 are the first 50 of the 100, and so on), drawn (seeded)
  first from the forms outside fold 0, then from fold 0's other forms (of writers the held-out
  forms do not have): up to 1,300, every train form but the held-out ones, writer-disjoint from
  them;
- **the fold-0 reader** (``--crossfit``/fold_0, when present: fine-tuned on the 1,028 forms
  outside fold 0 that it did not hold out, the same recipe; its early stopping used its own 100
  held-out forms, which are outside fold 0 too) as an extra point; ``--no-fold-reader`` leaves it
  out.

Every point is fine-tuned by ``crossfit.train_fold`` with the fold readers' recipe (the
``train_fieldreader`` block of conf/base with ``crossfit_benchmark.py``'s trainer settings: 12
epochs, 40 min cap, patience 4, seed 42, labels ``first``); its plan must match the fold reader's
training settings, which the JSON records. Each point reads the 199 validation forms twice, plain
beam search and with the lexicon setting (of the point's own training labels) that read the
held-out forms best (``tuning.choose_lexicon``; none when plain reads them best), scored with
``metrics.score_forms``; a 95 % bootstrap interval of FLA over the validation forms, and the paired
gain over the next smaller point.

Usage (from the repository root; measured 42 min on one core of an otherwise idle 2-core machine
for the default sizes, 22 of them the 1,300-form point; ``--max-minutes 75`` keeps a loaded
machine from cutting that point's 12 epochs short; resumable: a
point complete under ``--out/n_<N>`` is loaded, not retrained, and a crashed one resumes from its
``last.ckpt``)::

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/fieldreader/learning_curve_benchmark.py --max-minutes 75

Writes ``benchmarks/results/fieldreader_learning_curve.{json,md}`` after every point (``complete``
says whether all points are in); ``--report`` rewrites the markdown from the JSON; ``--export 1300
data/06_models/benchmark_fieldreader`` saves the 1,300-form reader with the train recipe's lexicon
and calibration (the digitize benchmark's reader in docs/results/digitize.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, rewrite_report, write_results  # noqa: E402

NAME = "fieldreader_learning_curve"
FOLD = 0  # the crossfit fold whose forms give the held-out set and whose reader is the largest point
logger = logging.getLogger("learning_curve")


def _params(args: argparse.Namespace) -> dict:
    """The ``train_fieldreader`` block of conf/base with the fold readers' trainer settings
    (as ``crossfit_benchmark.py`` sets them)."""
    import yaml

    block = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    block["trainer"].update({"epochs": args.epochs, "max_minutes": args.max_minutes, "patience": 4,
                             "seed": args.seed, "progress_bar": args.progress_bar})
    block["crossfit"].update({"folds": 5, "seed": 0, "model_dir": args.out})
    block["checkpoint_dir"] = None
    block["labels"] = "first"
    return block


def _forms(names: list[str], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(held-out forms: seeded from fold ``FOLD``; the pool of training forms, in a seeded order
    whose first N are the N-form subset, so the subsets are nested: first the forms outside fold
    ``FOLD``, then fold ``FOLD``'s other forms of writers none of the held-out forms has, so every
    subset up to all train forms but the held-out ones stays writer-disjoint from them)."""
    import numpy as np

    from handwriting_pipeline.fieldreader.crossfit import assign_folds, writer_of

    folds_of = assign_folds(names, 5, 0)
    inside = sorted(n for n in names if folds_of[n] == FOLD)
    outside = sorted(n for n in names if folds_of[n] != FOLD)
    rng = np.random.default_rng(args.subset_seed)
    held = sorted(rng.permutation(inside)[: args.holdout_forms].tolist())
    pool = rng.permutation(outside).tolist()
    held_writers = {writer_of(n) for n in held}
    rest = sorted(n for n in inside if n not in held and writer_of(n) not in held_writers)
    return held, pool + rng.permutation(rest).tolist()  # fold 0's other forms last: the subsets stay nested


def _interval(exact) -> dict:
    """FLA of per-form 0/1 scores and its 95 % bootstrap interval over the forms (the paired
    bootstrap against 0: the mean's own interval)."""
    from handwriting_pipeline.selection import paired_bootstrap

    found = paired_bootstrap(exact, exact * 0)
    return {"FLA": round(100 * found.mean, 2), "low": round(100 * found.low, 2), "high": round(100 * found.high, 2)}


def _gain(candidate, baseline) -> dict:
    from handwriting_pipeline.selection import paired_bootstrap

    found = paired_bootstrap(candidate, baseline)
    return {"gain": round(100 * found.mean, 2), "low": round(100 * found.low, 2), "high": round(100 * found.high, 2)}


class _Point:
    """One reader's evaluation: the lexicon setting chosen on the held-out forms, its validation
    readings plain and with that setting."""

    def __init__(self, reader, train, held: list[str], fit: list[str], validation, settings, beam: int) -> None:
        from handwriting_pipeline.fieldreader.oof import _Remembered, predictions_table
        from handwriting_pipeline.fieldreader.predict import read_lines
        from handwriting_pipeline.fieldreader.tuning import choose_lexicon, exact_share
        from handwriting_pipeline.forms.lines import cut_lines
        from handwriting_pipeline.metrics import aggregate, score_forms

        memo = _Remembered(reader)  # each line's log-probabilities once, however often the grid reads it
        started = time.time()
        if fit:
            lines = [cut_lines(train.images[n], reader.config.lines) for n in held]
            gold = [train.fields(n) for n in held]
            plain_held = exact_share(read_lines(memo, lines, beam=beam), gold)
            lexicon, readings = choose_lexicon(memo, lines, gold, [train.fields(n) for n in fit], settings.lexicon.grid,
                                               int(settings.lexicon.max_edits))
            self.held = {"forms": len(held), "FLA_plain": round(100 * plain_held, 2),
                         "FLA_chosen": round(100 * exact_share(readings, gold), 2)}
        else:  # the stock recognizer: no labels, no lexicon
            lexicon, self.held = None, {"forms": len(held), "FLA_plain": None, "FLA_chosen": None}
        self.lexicon = ({"penalty": lexicon.penalty, "case_weight": lexicon.case_weight} if lexicon else None)
        names = validation.labels["file_name"].tolist()
        val_lines = [cut_lines(validation.images[n], reader.config.lines) for n in names]
        self.scores, self.exact = {}, {}
        for decoding, rerank in (("plain", None), ("lexicon", lexicon.rerank if lexicon else None)):
            readings = read_lines(memo, val_lines, beam=beam, rerank=rerank)
            per_form = score_forms(validation.labels, predictions_table(dict(zip(names, readings))))
            found = aggregate(per_form)
            self.exact[decoding] = per_form.set_index("file_name")["exact"].astype(float)
            self.scores[decoding] = {**_interval(self.exact[decoding]), "CBA": round(float(found["CBA"]), 2)}
        self.read_minutes = round((time.time() - started) / 60, 2)


def _train_point(train, n: int, split: dict, settings, folder: Path) -> tuple[dict, bool]:
    """The ``n``-form point's ``done.json`` (trained now, or loaded when complete there)."""
    from handwriting_pipeline.fieldreader import crossfit

    plan = crossfit.fold_plan(settings, split, n)
    if crossfit.is_complete(folder, plan):
        logger.info("[learning curve] N=%d: complete in %s, loaded (not retrained)", n, folder)
        return json.loads((folder / crossfit.DONE_FILE).read_text()), False
    logger.info("[learning curve] N=%d: fine-tuning on %d forms (early stopping on %d held-out forms) -> %s", n,
                len(split["fit"]), len(split["holdout"]), folder)
    return crossfit.train_fold(train, split, settings, n, folder), True


def _markdown(result: dict) -> str:
    val = result["validation_forms"]
    lines = [f"# Field reader learning curve: FLA on validation by forms labelled ({result['date']})", "",
             f"`{result['command'].strip()}` — {result['machine']['cpu_count']} CPU cores, {result['threads']} thread(s). "
             f"Each reader fine-tuned from the stock PP-OCRv6 recognizer with the fold readers' recipe "
             f"({result['trainer']['epochs']} epochs, cap {result['trainer']['max_minutes']} min, patience "
             f"{result['trainer']['patience']}, best epoch on {result['holdout_forms']} held-out train forms restored); "
             f"the lexicon of its own training labels, its setting chosen on the same held-out forms (none when plain "
             f"beam search reads them best). Validation: {val} forms, one form = {100 / max(val, 1):.2g} FLA point; "
             "[95 % bootstrap interval over the forms]. "
             + ("All points are in." if result["complete"] else "**Not all points are in yet.**"), "",
             "| forms labelled | FLA plain | FLA with lexicon [interval] | lexicon chosen | CBA | gain over previous row "
             "[paired interval] | train minutes | epochs |", "|--:|--:|---|---|--:|---|--:|--:|"]
    for row in result["rows"]:
        lex, plain = row["lexicon"], row["plain"]
        setting = "–" if row["forms"] == 0 else ("none" if row["lexicon_setting"] is None else
                                                  f"δ {row['lexicon_setting']['penalty']:g}, case "
                                                  f"{row['lexicon_setting']['case_weight']:g}")
        gain = row.get("gain_over_previous")
        gain = "–" if not gain else f"{gain['gain']:+.2f} [{gain['low']:+.2f}, {gain['high']:+.2f}]"
        minutes = "–" if row["train_minutes"] is None else f"{row['train_minutes']:.1f}{row.get('note_mark', '')}"
        lines.append(f"| {row['label']} | {plain['FLA']} | {lex['FLA']} [{lex['low']}, {lex['high']}] | {setting} | "
                     f"{lex['CBA']} | {gain} | {minutes} | {row['epochs'] if row['epochs'] is not None else '–'} |")
    lines += ["", "FLA with lexicon, CBA and the gain over the previous row (paired per form) are of the reading with "
              "the chosen lexicon setting (plain when none was chosen). \"Forms labelled\" counts the forms trained on; "
              f"every point also used the {result['holdout_forms']} labelled held-out forms (early stopping, lexicon "
              "choice). The subsets are nested (the smaller inside the larger) and writer-disjoint from the held-out "
              "forms. Every point trains the same number of epochs, so a small point takes fewer optimizer steps (as a "
              "user with few forms would). The stock recognizer's row is PP-OCRv6 without fine-tuning, plain beam search."]
    if result.get("fold_reader"):
        fold = result["fold_reader"]
        lines += ["", f"\\* The out-of-fold reader of crossfit fold {fold['fold']} (fine-tuned on "
                  f"{fold['fit_forms']} train forms, early stopping on {fold['own_holdout_forms']} others, same recipe"
                  f"{'' if fold['same_training_settings'] else ', **but its plan differs from this run**'}), its "
                  f"lexicon chosen on the same held-out forms (which it never saw); its train minutes were measured "
                  f"in the crossfit run ({fold['threads_note']}), not on this run's thread budget."]
    return "\n".join(lines) + "\n"


def _export(point: Path, folder: Path) -> int:
    """Save ``point``'s reader with the lexicon and calibration ``kedro run --pipeline train``
    adds (:func:`~handwriting_pipeline.fieldreader.tuning.add_lexicon_and_calibration`, on the
    point's held-out forms) to ``folder``."""
    import yaml

    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader import tuning
    from handwriting_pipeline.fieldreader.crossfit import MODEL_DIR, PLAN_FILE
    from handwriting_pipeline.fieldreader.model import FieldReader

    plan = json.loads((point / PLAN_FILE).read_text())
    train, _ = read_donut_folder(SHARED / "train")
    params = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    reader = FieldReader.load(point / MODEL_DIR, with_torch=True)
    reader = tuning.add_lexicon_and_calibration(reader, train, {"fit": plan["fit"], "holdout": plan["holdout"]}, params)
    reader.save(folder)
    logger.info("[learning curve] %s (%d forms) with its lexicon and calibration -> %s", point, len(plan["fit"]), folder)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400, 1300],
                        help="training forms per point (at most 1,300: every train form but the held-out ones)")
    parser.add_argument("--out", default="data/06_models/learning_curve", help="the points' readers: <out>/n_<N>")
    parser.add_argument("--crossfit", default="data/06_models/fieldreader_crossfit",
                        help="the fold readers' folder (fold_0 is the largest point)")
    parser.add_argument("--no-fold-reader", action="store_true", help="leave the fold-0 reader's point out")
    parser.add_argument("--no-stock", action="store_true", help="leave out the stock recognizer's row (0 forms)")
    parser.add_argument("--holdout-forms", type=int, default=100)
    parser.add_argument("--subset-seed", type=int, default=0, help="seed of the held-out forms and the subsets")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-minutes", type=float, default=40.0, help="wall-clock cap per point")
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--progress-bar", action="store_true", help="Lightning's progress bar (off: one log line an epoch)")
    parser.add_argument("--limit-validation", type=int, default=0, help="only the first N validation forms (smoke run)")
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    parser.add_argument("--report", action="store_true", help="only rewrite the markdown from the results JSON")
    parser.add_argument("--export", nargs=2, metavar=("N", "DIR"),
                        help="only save the trained N-form point's reader, with the train recipe's lexicon and "
                             "calibration fitted on its held-out forms, to DIR (e.g. digitize_benchmark.py's --model)")
    args = parser.parse_args()
    if args.report:
        return rewrite_report(Path(args.results).with_suffix(".json"), _markdown)
    sys.path.insert(0, str(ROOT / "src"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.export:
        return _export(Path(args.out) / f"n_{int(args.export[0])}", Path(args.export[1]))

    import torch

    from handwriting_pipeline.config import FieldReaderTrainSettings
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.crossfit import DONE_FILE, MODEL_DIR, PLAN_FILE, fold_dir, is_complete
    from handwriting_pipeline.fieldreader.crossfit import fold_plan as plan_of
    from handwriting_pipeline.fieldreader.model import FieldReader

    torch.set_num_threads(args.threads)
    started = time.time()
    train, _ = read_donut_folder(SHARED / "train")
    validation, _ = read_donut_folder(SHARED / "validation")
    if args.limit_validation:
        validation = validation.subset(validation.labels["file_name"].tolist()[: args.limit_validation])
    names = train.labels["file_name"].tolist()
    held, pool = _forms(names, args)
    sizes = sorted(set(args.sizes))
    if sizes[-1] > len(pool):
        parser.error(f"the largest size ({sizes[-1]}) is more than the {len(pool)} train forms outside the held-out "
                     "forms and their writers")
    params = _params(args)
    settings = FieldReaderTrainSettings.from_params(params)
    beam = int(settings.crossfit.beam)
    fold_here = fold_dir(args.crossfit, FOLD)
    fold_plan = json.loads((fold_here / PLAN_FILE).read_text()) if is_complete(fold_here) else None
    use_fold = fold_plan is not None and not args.no_fold_reader
    if not args.no_fold_reader and fold_plan is None:
        logger.warning("[learning curve] no complete fold reader in %s: its point is left out", fold_here)
    order = {n: i for i, n in enumerate(names)}
    command = " ".join(["python benchmarks/fieldreader/learning_curve_benchmark.py", *sys.argv[1:]])
    result = {**machine(), "command": command,
              "threads": args.threads, "trainer": params["trainer"], "labels": params["labels"], "beam": beam,
              "holdout_forms": len(held), "holdout": held, "subset_seed": args.subset_seed,
              "validation_forms": len(validation.labels), "sizes": sizes, "out": args.out, "rows": [], "complete": False}
    points: list[tuple[int, str, object]] = []  # (forms, label, reader-or-None) in order
    if not args.no_stock:
        points.append((0, "0 (stock recognizer)", "stock"))
    points += [(n, f"{n:,}", None) for n in sizes]
    if use_fold:
        points.append((len(fold_plan["fit"]), f"{len(fold_plan['fit']):,}\\* (fold-{FOLD} reader)", "fold"))
    points.sort(key=lambda point: point[0])  # the fold reader's point among the sizes, by forms
    previous = None
    for forms, label, kind in points:
        row = {"forms": forms, "label": label, "kind": kind or "trained", "train_minutes": None, "epochs": None}
        if kind == "stock":
            reader, fit = FieldReader.stock(), []
        elif kind == "fold":
            done = json.loads((fold_here / DONE_FILE).read_text())
            fit = list(fold_plan["fit"])
            clash = sorted(set(fit + fold_plan["holdout"]) & set(held))
            if clash:
                raise SystemExit(f"the fold reader trained or stopped on {len(clash)} of the held-out forms")
            same = plan_of(settings, {"fit": [], "holdout": [], "fold": []}, FOLD)["training"] == fold_plan["training"]
            result["fold_reader"] = {"fold": FOLD, "dir": str(fold_here), "fit_forms": len(fit),
                                     "own_holdout_forms": len(fold_plan["holdout"]), "same_training_settings": same,
                                     "training": fold_plan["training"],
                                     "threads_note": "crossfit_benchmark.py's default of 2 threads on 2 cores"}
            row.update({"train_minutes": round(done["train_s"] / 60, 1), "epochs": done["epochs"],
                        "stop_reason": done["stop_reason"], "note_mark": "\\*", "dir": str(fold_here)})
            reader = FieldReader.load(fold_here / MODEL_DIR)
        else:
            fit = sorted(pool[:forms], key=order.get)
            split = {"fit": fit, "holdout": held, "fold": held}  # train_fold reads "fold" after training: the held-out
            folder = Path(args.out) / f"n_{forms}"
            done, trained = _train_point(train, forms, split, settings, folder)
            row.update({"train_minutes": round(done["train_s"] / 60, 1), "epochs": done["epochs"],
                        "stop_reason": done["stop_reason"], "trained_this_run": trained, "dir": str(folder)})
            reader = FieldReader.load(folder / MODEL_DIR)
            logger.info("[learning curve] N=%d: %s after %d epochs, %.1f min (%s)", forms,
                        "trained" if trained else "loaded", done["epochs"], done["train_s"] / 60, done["stop_reason"])
        point = _Point(reader, train, held, fit, validation, settings, beam)
        row.update({"lexicon_setting": point.lexicon, "holdout_reading": point.held, "plain": point.scores["plain"],
                    "lexicon": point.scores["lexicon"], "read_minutes": point.read_minutes,
                    "exact_per_form": {d: point.exact[d].astype(int).to_dict() for d in point.exact}})
        if previous is not None and kind != "stock":
            row["gain_over_previous"] = _gain(point.exact["lexicon"], previous.exact["lexicon"])
        previous = point if kind != "stock" else previous
        logger.info("[learning curve] %s forms: validation FLA plain %.2f, with lexicon %s %.2f [%.2f, %.2f], CBA %.2f",
                    label, row["plain"]["FLA"], point.lexicon, row["lexicon"]["FLA"], row["lexicon"]["low"],
                    row["lexicon"]["high"], row["lexicon"]["CBA"])
        result["rows"].append(row)
        result["complete"] = len(result["rows"]) == len(points)
        result["wall_minutes_this_run"] = round((time.time() - started) / 60, 1)
        write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
