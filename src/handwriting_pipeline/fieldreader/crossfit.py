"""Out-of-fold readings of the train forms (cross-fitting, ``train_fieldreader.crossfit``).

Every knob chosen on the 100 held-out train forms has a ±10-point interval. With ``folds`` = K,
the train forms are split into K folds (:func:`assign_folds`: seeded, a writer's forms — e.g. the
41 copies of the blank form f0067 — stay in one fold); per fold, a reader is fine-tuned exactly
as the main one (:func:`~handwriting_pipeline.fieldreader.recipe.fine_tune`, early stopping on
held-out forms that are also outside the fold) on the forms outside the fold, and reads the
fold's forms. Every train form then has a reading by a reader that never saw it, so choices can
be made on all train forms with a paired bootstrap interval
(:func:`handwriting_pipeline.selection.paired_bootstrap`). The fold readers, trained on different
forms, also make an ensemble (their per-frame CTC posteriors averaged: ``EnsembleReader``).

The output folder (``crossfit.model_dir``) holds per fold ``fold_<k>/``:

- ``plan.json``: the fold's forms (fit, held out, read) and the training settings, written first;
- ``checkpoints/``: Lightning checkpoints (a crashed fold with the same plan resumes from ``last.ckpt``);
- ``model/``: the fold reader, a normal field reader folder (:class:`~.model.FieldReader`);
- ``history.csv``, ``readings.csv``: its training history and its out-of-fold readings;
- ``done.json``: the plan, wall times and stop reason, written last: a fold whose ``done.json``
  has the same plan is complete and is loaded, never retrained (nothing is lost on a crash);

and, once every fold is there, ``readings.csv`` (all out-of-fold readings) and ``folds.csv``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.config import FieldReaderTrainSettings
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.fields.formspec import HSF_FORM, load_form
from handwriting_pipeline.forms.lines import HEIGHT
from handwriting_pipeline.selection import holdout_names

logger = logging.getLogger(__name__)

MODEL_DIR, CHECKPOINT_DIR = "model", "checkpoints"
PLAN_FILE, DONE_FILE, READINGS_FILE, HISTORY_FILE = "plan.json", "done.json", "readings.csv", "history.csv"
FOLDS_FILE = "folds.csv"
#: one row per form and field of the out-of-fold readings
READING_COLUMNS = ["file_name", "field", "reading", "confidence", "fold", "gold"]
#: one row per fold
FOLD_COLUMNS = ["fold", "read_forms", "fit_forms", "holdout_forms", "trained", "wall_s", "train_s", "read_s",
                "epochs", "stop_reason", "model_dir"]


def fold_dir(folder: str | Path, fold: int) -> Path:
    return Path(folder) / f"fold_{fold}"


def writer_of(name: str) -> str:
    """The writer of a form file (``f0067_25_N.png`` -> ``f0067``): forms of one writer share a fold."""
    return Path(name).stem.split("_")[0]


def assign_folds(names: Sequence[str], folds: int, seed: int = 0) -> dict[str, int]:
    """File name -> fold (0..folds-1): ``GroupKFold`` with shuffled writers (seeded), on the
    sorted names (the assignment does not depend on the forms' order)."""
    from sklearn.model_selection import GroupKFold

    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError("the train forms' file names are not unique")
    ordered = sorted(names)
    groups = [writer_of(n) for n in ordered]
    if int(folds) < 2 or len(set(groups)) < int(folds):
        raise ValueError(f"crossfit needs 2 <= folds <= writers ({len(set(groups))}); got folds={folds}")
    found: dict[str, int] = {}
    splitter = GroupKFold(n_splits=int(folds), shuffle=True, random_state=int(seed))
    for fold, (_, inside) in enumerate(splitter.split(np.zeros(len(ordered)), groups=groups)):
        found.update({ordered[i]: fold for i in inside})
    return {n: found[n] for n in names}


def fold_split(names: Sequence[str], folds_of: Mapping[str, int], fold: int, holdout_forms: int,
               holdout_share: float | None = None) -> dict[str, list[str]]:
    """``{"fit", "holdout", "fold"}``: the forms outside ``fold`` split as the main reader's
    (:func:`~handwriting_pipeline.selection.holdout_names`: the last of them held out for early
    stopping), and the fold's own forms (read, never trained or chosen on)."""
    outside = [n for n in names if folds_of[n] != fold]
    return {**holdout_names(outside, int(holdout_forms), holdout_share), "fold": [n for n in names if folds_of[n] == fold]}


#: ``train_fieldreader`` keys that do not change a fold reader or its readings (the held-out
#: share and count show in the plan's form lists)
NOT_IN_PLAN = ("checkpoint_dir", "resume", "crossfit", "lexicon", "style", "views", "members", "holdout_forms",
               "holdout_share")


def fold_plan(settings: FieldReaderTrainSettings, split: Mapping[str, list[str]], fold: int,
              form: str | None = None) -> dict[str, Any]:
    """What makes a fold reader and its readings: its forms, the training settings (all of
    ``train_fieldreader`` but :data:`NOT_IN_PLAN` and the progress bar; the line height only when
    not the stock 48), the reading's beam and the form, when it is not the HSF form (plans written
    before forms were specs stay valid)."""
    config = {k: v for k, v in settings.to_dict().items() if k not in NOT_IN_PLAN}
    config["trainer"] = {k: v for k, v in config.get("trainer", {}).items() if k != "progress_bar"}
    if config.get("labels", "first") == "first":  # the second annotation is not read
        config.pop("second_annotation", None)
    if config.get("line_height") == HEIGHT:  # plans written before the height was a setting stay valid
        config.pop("line_height")
    plan = {"fold": int(fold), "folds": int(settings.crossfit.folds), "seed": int(settings.crossfit.seed),
            "beam": int(settings.crossfit.beam), "fit": list(split["fit"]), "holdout": list(split["holdout"]),
            "read": list(split["fold"]), "training": config}
    if form and load_form(form).name != HSF_FORM:
        plan["form"] = str(form)
    return json.loads(json.dumps(plan))  # as read back from JSON (tuples -> lists)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any) -> None:
    """Written whole or not at all (a crash leaves the old file or none)."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1))
    os.replace(part, path)


def is_complete(folder: str | Path, plan: Mapping[str, Any] | None = None) -> bool:
    """A fold folder with its model, its readings and ``done.json`` (of ``plan``, when given)."""
    folder = Path(folder)
    done = _read_json(folder / DONE_FILE)
    from handwriting_pipeline.fieldreader.model import CONFIG_FILE

    return (isinstance(done, dict) and (plan is None or done.get("plan") == plan)
            and (folder / MODEL_DIR / CONFIG_FILE).is_file() and (folder / READINGS_FILE).is_file())


def read_fold(reader: Any, train_forms: Any, names: Sequence[str], fold: int, beam: int = 8) -> pd.DataFrame:
    """The reader's readings of the named forms (beam search, no lexicon), one row per field."""
    from handwriting_pipeline.fieldreader.predict import read_forms

    readings = read_forms(reader, [train_forms.images[n] for n in names], beam=int(beam))
    keys = list(reader.form.keys)
    gold = train_forms.labels.set_index("file_name").loc[list(names), keys].to_dict("index")
    rows = [{"file_name": n, "field": k, "reading": r.fields[k], "confidence": r.confidence[k], "fold": int(fold),
             "gold": gold[n][k]} for n, r in zip(names, readings) for k in keys]
    return pd.DataFrame(rows, columns=READING_COLUMNS)


def load_readings(path: str | Path) -> pd.DataFrame:
    """A saved readings table (the values as written: "None" stays a string)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["confidence"] = pd.to_numeric(table["confidence"], errors="coerce")
    table["fold"] = table["fold"].astype(int)
    return table[READING_COLUMNS]


def train_fold(train_forms: Any, split: Mapping[str, list[str]], settings: FieldReaderTrainSettings, fold: int,
               folder: str | Path, form: str | None = None) -> dict[str, Any]:
    """Fine-tune fold ``fold``'s reader on ``split["fit"]`` (early stopping on ``split["holdout"]``),
    save it, read ``split["fold"]`` with the saved model; returns its ``done.json``."""
    from handwriting_pipeline.fieldreader import recipe
    from handwriting_pipeline.fieldreader.model import FieldReader

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plan = fold_plan(settings, split, fold, form)
    resume = _read_json(folder / PLAN_FILE) == plan  # the same fold crashed before: go on from last.ckpt
    (folder / DONE_FILE).unlink(missing_ok=True)
    _write_json(folder / PLAN_FILE, plan)
    started = time.time()
    fold_settings = dataclasses.replace(settings, checkpoint_dir=str(folder / CHECKPOINT_DIR), resume=resume)
    reader, history = recipe.fine_tune(train_forms, {"fit": list(split["fit"]), "holdout": list(split["holdout"])},
                                       fold_settings, form)
    reader.config.summary["crossfit"] = {"fold": int(fold), "folds": int(settings.crossfit.folds),
                                         "seed": int(settings.crossfit.seed), "read_forms": len(split["fold"])}
    reader.save(folder / MODEL_DIR)
    history.to_csv(folder / HISTORY_FILE, index=False)
    trained = time.time()
    readings = read_fold(FieldReader.load(folder / MODEL_DIR), train_forms, split["fold"], fold, settings.crossfit.beam)
    readings.to_csv(folder / READINGS_FILE, index=False)
    done = {"plan": plan, "wall_s": round(time.time() - started, 2), "train_s": round(trained - started, 2),
            "read_s": round(time.time() - trained, 2), "epochs": len(history),
            "stop_reason": reader.config.summary.get("stop_reason", ""), "resumed": resume}
    _write_json(folder / DONE_FILE, done)
    return done


@dataclass
class Crossfit:
    """The fold readers (loaded from their folders), the out-of-fold readings
    (:data:`READING_COLUMNS`) and one row per fold (:data:`FOLD_COLUMNS`)."""

    readers: list[Any]
    readings: pd.DataFrame
    folds: pd.DataFrame


def _settings_split(train_forms: Any, settings: FieldReaderTrainSettings, fold: int) -> dict[str, list[str]]:
    """:func:`fold_split` of fold ``fold`` of the train forms as ``settings`` split them."""
    names = train_forms.labels["file_name"].tolist()
    folds_of = assign_folds(names, int(settings.crossfit.folds), int(settings.crossfit.seed))
    return fold_split(names, folds_of, fold, int(settings.holdout_forms), float(settings.holdout_share))


def _fold_row(fold: int, split: Mapping[str, Sequence[str]], done: Mapping[str, Any], here: Path,
              trained: bool) -> dict[str, Any]:
    """A fold's row of :data:`FOLD_COLUMNS` (``split``: its fit, holdout and fold forms)."""
    return {"fold": fold, "read_forms": len(split["fold"]), "fit_forms": len(split["fit"]),
            "holdout_forms": len(split["holdout"]), "trained": trained,
            **{k: done.get(k) for k in ("wall_s", "train_s", "read_s", "epochs", "stop_reason")},
            "model_dir": str(here / MODEL_DIR)}


def _complete_folds(folder: str | Path) -> list[tuple[int, Path]]:
    """(fold, folder) of every complete fold saved under ``folder``, by fold."""
    return sorted((int(p.name.split("_")[1]), p) for p in Path(folder).glob("fold_*")
                  if p.name.split("_")[1].isdigit() and is_complete(p))


def fit_fold(train_forms: Any, settings: FieldReaderTrainSettings, fold: int, folder: str | Path,
             form: str | None = None) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """Fold ``fold`` of the train forms: its reader (trained unless a complete fold with the same
    plan is in ``folder``, then loaded), its out-of-fold readings and its row of :data:`FOLD_COLUMNS`.
    Folds are independent: one process per fold may train them side by side (e.g. on one GPU)."""
    from handwriting_pipeline.fieldreader.model import FieldReader

    split, here = _settings_split(train_forms, settings, fold), fold_dir(folder, fold)
    trained = not is_complete(here, fold_plan(settings, split, fold, form))
    done = train_fold(train_forms, split, settings, fold, here, form) if trained else _read_json(here / DONE_FILE)
    row = _fold_row(fold, split, done, here, trained)
    logger.info("[fieldreader] crossfit fold %d/%d: %s on %d forms (%d held out), read %d forms; %.1f min; %s",
                fold + 1, int(settings.crossfit.folds), "trained" if trained else "loaded (complete)", len(split["fit"]),
                len(split["holdout"]), len(split["fold"]), float(done.get("wall_s") or 0) / 60,
                done.get("stop_reason", ""))
    return FieldReader.load(here / MODEL_DIR), load_readings(here / READINGS_FILE), row


def _fold_process(train_forms: Any, settings: FieldReaderTrainSettings, fold: int, folder: str | Path,
                  form: str | None, threads: int) -> None:
    """One fold in a process of its own (:func:`train_side_by_side`)."""
    import torch

    torch.set_num_threads(threads)
    fit_fold(train_forms, settings, fold, folder, form)


def train_side_by_side(train_forms: Any, settings: FieldReaderTrainSettings, folds: Sequence[int],
                       folder: str | Path, form: str | None = None) -> set[int]:
    """Trains the folds of ``folds`` not complete in ``folder``, ``crossfit.jobs`` at a time, each
    in a process of its own with an equal share of the cores; returns the folds it trained. A
    fold that fails stops the run with its number (the others' work is kept: they are complete)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    todo = [k for k in folds
            if not is_complete(fold_dir(folder, k), fold_plan(settings, _settings_split(train_forms, settings, k), k, form))]
    if not todo:
        return set()
    jobs = min(int(settings.crossfit.jobs), len(todo))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    quiet = dataclasses.replace(settings, trainer=dataclasses.replace(settings.trainer, progress_bar=False))
    logger.info("[fieldreader] crossfit: training folds %s side by side, %d at a time, %d thread(s) each", todo, jobs,
                threads)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_fold_process, train_forms, quiet, k, folder, form, threads): k for k in todo}
        for future in tqdm(as_completed(futures), total=len(futures), desc="crossfit folds side by side",
                           disable=not settings.trainer.progress_bar):
            try:
                future.result()
            except Exception as error:
                raise RuntimeError(f"crossfit fold {futures[future]} failed in its process: {error}; the folds "
                                   f"complete in {folder} are kept, run again to go on") from error
    return set(todo)


def fit_folds(train_forms: Any, params: Mapping[str, Any] | FieldReaderTrainSettings,
              folder: str | Path | None = None, first: int | None = None, form: str | None = None) -> Crossfit:
    """One reader per fold of the train forms, fine-tuned on the forms outside it, reading it
    (``params``: the ``train_fieldreader`` block; ``folder``: where the fold readers are kept,
    ``crossfit.model_dir`` when None; ``first``: only the first folds, None = all). A fold already
    complete there with the same forms and training settings is loaded, not retrained
    (:func:`fit_fold`)."""
    settings = FieldReaderTrainSettings.from_params(params)
    folds = int(settings.crossfit.folds)
    folder = Path(folder or settings.crossfit.model_dir)
    wanted = range(folds if first is None else min(first, folds))
    elsewhere = train_side_by_side(train_forms, settings, list(wanted), folder, form) if settings.crossfit.jobs > 1 else set()
    readers, readings, rows = [], [], []
    bar = tqdm(wanted, desc="crossfit folds", disable=not settings.trainer.progress_bar)
    for fold in bar:
        reader, read, row = fit_fold(train_forms, settings, fold, folder, form)
        row["trained"] = row["trained"] or fold in elsewhere
        readers.append(reader)
        readings.append(read)
        rows.append(row)
        bar.set_postfix(fold=fold, minutes=round(float(row.get("wall_s") or 0) / 60, 1))
    result = Crossfit(readers, pd.concat(readings, ignore_index=True), pd.DataFrame(rows, columns=FOLD_COLUMNS))
    result.readings.to_csv(folder / READINGS_FILE, index=False)
    result.folds.to_csv(folder / FOLDS_FILE, index=False)
    return result


def collect_folds(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(out-of-fold readings, one row per fold) of the complete folds saved under ``folder``,
    training nothing: e.g. after :func:`fit_fold` ran in one process per fold."""
    rows, readings = [], []
    for fold, here in _complete_folds(folder):
        done = _read_json(here / DONE_FILE)
        plan = done["plan"]
        rows.append(_fold_row(fold, {"fit": plan["fit"], "holdout": plan["holdout"], "fold": plan["read"]}, done, here,
                              False))
        readings.append(load_readings(here / READINGS_FILE))
    table = pd.concat(readings, ignore_index=True) if readings else pd.DataFrame(columns=READING_COLUMNS)
    return table, pd.DataFrame(rows, columns=FOLD_COLUMNS)


def crossfit_readings(train_forms: Any, params: Mapping[str, Any],
                      form: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kedro node: (out-of-fold readings, folds table) of :func:`fit_folds`, the fold readers
    kept under ``train_fieldreader.crossfit.model_dir``; two empty tables when ``crossfit.folds`` is 0."""
    settings = FieldReaderTrainSettings.from_params(params)
    if int(settings.crossfit.folds) == 0:
        logger.info("[fieldreader] crossfit off (train_fieldreader.crossfit.folds = 0)")
        return not_run()
    result = fit_folds(train_forms, settings, form=form)
    return result.readings, result.folds


def not_run() -> tuple[pd.DataFrame, pd.DataFrame]:
    """What :func:`crossfit_readings` gives when it does not run (crossfit off, or the field
    reader left out of ``train.models``): two empty tables with the right columns."""
    return pd.DataFrame(columns=READING_COLUMNS), pd.DataFrame(columns=FOLD_COLUMNS)


def load_fold_readers(folder: str | Path, with_torch: bool = False) -> list[Any]:
    """The complete fold readers saved under ``folder``, by fold (e.g. for an ``EnsembleReader``)."""
    from handwriting_pipeline.fieldreader.model import FieldReader

    return [FieldReader.load(p / MODEL_DIR, with_torch) for _, p in _complete_folds(folder)]


def oof_predictions(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings as a predictions table: file_name, fold, the four fields and ``<field>_conf``."""
    values = readings.pivot(index="file_name", columns="field", values="reading")[list(KEYS)]
    conf = readings.pivot(index="file_name", columns="field", values="confidence")[list(KEYS)].add_suffix("_conf")
    fold = readings.groupby("file_name")["fold"].first()
    table = pd.concat([fold, values, conf], axis=1).reset_index()
    order = list(dict.fromkeys(readings["file_name"]))
    table.columns.name = None
    return table.set_index("file_name").loc[order].reset_index()


def fields_right(readings: pd.DataFrame) -> pd.Series:
    """Per form, how many of its four fields read exactly right (the per-form score for
    :func:`~handwriting_pipeline.selection.paired_bootstrap`); ``== 4``: the form counts for FLA."""
    right = (readings["reading"] == readings["gold"]).groupby(readings["file_name"], sort=False).sum()
    return right.astype(int)


__all__ = ["FOLD_COLUMNS", "READING_COLUMNS", "Crossfit", "assign_folds", "collect_folds", "crossfit_readings", "fields_right",
           "fit_fold", "fit_folds", "fold_dir", "fold_plan", "fold_split", "is_complete", "load_fold_readers", "load_readings",
           "not_run", "oof_predictions", "read_fold", "train_fold", "train_side_by_side", "writer_of"]
