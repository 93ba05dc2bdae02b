"""The fold readers as one reader, with its choices made on the out-of-fold forms.

After cross-fitting (:mod:`.crossfit`) every train form was read by a fold reader that never saw
it. This module makes the choices that the main reader makes on its 100 held-out forms on all of
those forms instead, each with a paired bootstrap interval
(:func:`~handwriting_pipeline.selection.paired_bootstrap`, per form 1 when all four fields read
right), and switches a component on only when the interval's lower bound is above 0:

* the **lexicon** (:class:`~.lexicon.Lexicon`): per fold, the lexicon of the labels its reader was
  trained on; the grid's best setting (``train_fieldreader.lexicon.grid``) against plain beam
  search. Choosing the best of the grid on the same forms favours it a little (a maximum of
  noisy scores): the interval is of the chosen setting, not of a fresh one.
* the **style layer** is not fitted per fold (its classifiers would need a fit per fold reader):
  it stays off for the ensemble, and the choices say so.
* the **calibration** of the per-field confidences for the vote, fitted on the out-of-fold
  readings as decoded with the chosen settings. The ensemble's confidences (averaged posteriors)
  are calibrated with the single fold readers' readings: the closest forms there are that no
  member saw.

The result is an :class:`~.ensemble.EnsembleReader` of the fold readers whose config carries the
lexicon of all train labels (with the chosen settings), the calibration and the choices
(``summary["oof"]``), saved like any field reader (``fieldreader_ensemble_model``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.config import FieldReaderTrainSettings
from handwriting_pipeline.fieldreader.lexicon import Lexicon
from handwriting_pipeline.fieldreader.predict import FormReading, read_lines
from handwriting_pipeline.fieldreader.tuning import calibrate
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.forms.lines import cut_lines
from handwriting_pipeline.selection import PairedInterval, paired_bootstrap
from handwriting_pipeline.training.not_trained import NotTrained

logger = logging.getLogger(__name__)

#: one row per component of the choices table (``fieldreader_oof_choices``)
CHOICE_COLUMNS = ["component", "on", "setting", "forms", "fla_without", "fla_with", "gain", "low", "high", "note"]


@dataclass(frozen=True)
class Choice:
    """A component's measured gain on the out-of-fold forms and whether it is on."""

    component: str
    on: bool
    setting: dict[str, Any]
    forms: int
    fla_without: float
    fla_with: float
    interval: PairedInterval | None = None
    note: str = ""

    def row(self) -> dict[str, Any]:
        gain = self.interval
        return {"component": self.component, "on": self.on, "setting": str(self.setting or ""), "forms": self.forms,
                "fla_without": round(self.fla_without, 2), "fla_with": round(self.fla_with, 2),
                "gain": round(100 * gain.mean, 2) if gain else None, "low": round(100 * gain.low, 2) if gain else None,
                "high": round(100 * gain.high, 2) if gain else None, "note": self.note}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "interval": asdict(self.interval) if self.interval else None}


class _Remembered:
    """A reader whose log-probabilities are computed once per line (a grid reads the same lines
    many times)."""

    def __init__(self, reader: Any) -> None:
        self.reader, self.config, self._seen = reader, reader.config, {}

    def log_probs(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        keys = [hashlib.sha1(a.tobytes() + str(a.shape).encode()).hexdigest() for a in arrays]
        todo = [i for i, k in enumerate(keys) if k not in self._seen]
        for i, lp in zip(todo, self.reader.log_probs([arrays[i] for i in todo]) if todo else []):
            self._seen[keys[i]] = lp
        return [self._seen[k] for k in keys]


def fold_forms(readings: pd.DataFrame) -> dict[int, list[str]]:
    """fold -> its forms, in reading order (``readings``: the out-of-fold readings table)."""
    first = readings.drop_duplicates("file_name")
    return {int(k): part["file_name"].tolist() for k, part in first.groupby("fold", sort=True)}


def all_right(readings: Mapping[str, FormReading], train_forms: Any) -> pd.Series:
    """1 per form whose four fields all read right, indexed by file name."""
    return pd.Series({n: float(all(r.fields[k] == train_forms.fields(n)[k] for k in KEYS)) for n, r in readings.items()})


def read_folds(readers: Mapping[int, Any], lines: Mapping[int, list], folds: Mapping[int, list[str]], beam: int,
          lexicons: Mapping[int, Lexicon] | None = None) -> dict[str, FormReading]:
    out: dict[str, FormReading] = {}
    for fold, names in folds.items():
        rerank = lexicons[fold].rerank if lexicons else None
        out.update(zip(names, read_lines(readers[fold], lines[fold], beam=beam, rerank=rerank)))
    return out


def choose_lexicon(readers: Mapping[int, Any], train_forms: Any, folds: Mapping[int, list[str]],
                   settings: FieldReaderTrainSettings, beam: int = 8, progress: bool = True
                   ) -> tuple[Choice, dict[str, FormReading]]:
    """The lexicon setting of the grid that reads the out-of-fold forms best, on only when its
    gain over plain beam search has a paired interval above 0. Returns (the choice, the
    out-of-fold readings decoded as chosen)."""
    memo = {fold: _Remembered(readers[fold]) for fold in folds}
    lines = {fold: [cut_lines(train_forms.images[n], memo[fold].config.lines) for n in names]
             for fold, names in folds.items()}
    plain = read_folds(memo, lines, folds, beam)
    base = all_right(plain, train_forms)
    every = set().union(*folds.values())
    outside = {fold: [train_forms.fields(n) for n in train_forms.labels["file_name"] if n not in inside]
               for fold, inside in ((k, set(v)) for k, v in folds.items())}
    grid = settings.lexicon.grid
    best = (None, plain, base)
    combos = [(p, c) for p in grid["penalty"] for c in grid["case_weight"]]
    for penalty, case_weight in tqdm(combos, desc="lexicon grid (out-of-fold forms)", disable=not progress):
        found = {"penalty": float(penalty), "case_weight": float(case_weight)}
        lexicons = {fold: Lexicon.from_labels(outside[fold], max_edits=int(settings.lexicon.max_edits), **found)
                    for fold in folds}
        readings = read_folds(memo, lines, folds, beam, lexicons)
        score = all_right(readings, train_forms)
        logger.info("  lexicon %s on %d out-of-fold forms: FLA %.2f (plain %.2f)", found, len(every),
                    100 * score.mean(), 100 * base.mean())
        if score.mean() > best[2].mean():
            best = (found, readings, score)
    setting, readings, score = best
    interval = paired_bootstrap(score, base) if setting else None
    on = bool(interval and interval.better)
    note = ("interval above 0: on" if on else "interval includes 0: off" if setting
            else "no setting read better than plain beam search: off")
    choice = Choice("lexicon", on, setting or {}, len(base), 100 * base.mean(), 100 * score.mean(), interval, note)
    return choice, (readings if on else plain)


def style_choice(settings: FieldReaderTrainSettings, forms: int, fla: float) -> Choice:
    """The style layer is not fitted per fold reader: off for the ensemble, and said so."""
    note = ("not fitted per fold reader, so not measured on the out-of-fold forms: off"
            if settings.style.enabled else "train_fieldreader.style.enabled is false: off")
    return Choice("style layer", False, {}, forms, fla, fla, None, note)


def predictions_table(readings: Mapping[str, FormReading]) -> pd.DataFrame:
    """Readings as an engine's predictions table (file_name, the fields, ``<field>_conf`` raw)."""
    from handwriting_pipeline.predictions import predictions_from_records

    return predictions_from_records([{"file_name": n, **r.fields, **{f"{k}_conf": r.confidence[k] for k in KEYS}}
                                     for n, r in readings.items()])


def build_ensemble(readers: Mapping[int, Any], train_forms: Any, readings: pd.DataFrame,
                   params: Mapping[str, Any] | FieldReaderTrainSettings, progress: bool = True
                   ) -> tuple[Any, pd.DataFrame]:
    """The fold readers as one :class:`~.ensemble.EnsembleReader` whose lexicon, calibration and
    choices are learned on the out-of-fold forms (``readings``: the out-of-fold readings table,
    which says each form's fold), and the out-of-fold forms' predictions table as decoded with
    those choices (each form by the fold reader that never saw it; raw confidences), on which the
    choices downstream (vote, trust thresholds) are made."""
    from handwriting_pipeline.fieldreader.ensemble import EnsembleReader

    settings = FieldReaderTrainSettings.from_params(params)
    folds = fold_forms(readings)
    missing = sorted(set(folds) - set(readers))
    if missing:
        raise ValueError(f"out-of-fold readings of folds {missing} have no fold reader; rerun the crossfit step")
    started = time.time()
    beam = int(settings.crossfit.beam)
    lexicon, decoded = choose_lexicon(readers, train_forms, folds, settings, beam, progress)
    names = list(decoded)
    style = style_choice(settings, lexicon.forms, lexicon.fla_with if lexicon.on else lexicon.fla_without)
    members = [readers[fold] for fold in sorted(folds)]
    config = type(members[0].config).from_json(members[0].config.to_json())
    everyone = [train_forms.fields(n) for n in train_forms.labels["file_name"]]
    config.lexicon = (Lexicon.from_labels(everyone, max_edits=int(settings.lexicon.max_edits), **lexicon.setting).to_json()
                      if lexicon.on else {})
    config.calibration = calibrate([decoded[n] for n in names], names, train_forms.subset(names).labels,
                                   members[0].form)
    config.summary = {"members": len(members), "member_folds": sorted(folds),
                      "oof": {"forms": len(names), "fla": round(style.fla_with, 2),
                              "choices": [c.to_json() for c in (lexicon, style)],
                              "minutes": round((time.time() - started) / 60, 2)}}
    logger.info("[fieldreader] ensemble of %d fold readers; on the %d out-of-fold forms: %s", len(members),
                len(names), "; ".join(f"{c.component} {'on' if c.on else 'off'} ({c.note})" for c in (lexicon, style)))
    return EnsembleReader(members, config), predictions_table(decoded)


def choices_table(reader: Any) -> pd.DataFrame:
    """The choices saved with an ensemble (``summary["oof"]["choices"]``), one row per component."""
    found = (getattr(getattr(reader, "config", None), "summary", {}) or {}).get("oof", {}).get("choices", [])
    rows = []
    for data in found:
        interval = PairedInterval(**data["interval"]) if data.get("interval") else None
        rows.append(Choice(**{**data, "interval": interval}).row())
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def ensemble_on_oof(readings: pd.DataFrame, folds: pd.DataFrame, train_forms: Any,
                    params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Kedro node: (the fold readers' ensemble, its choices table, the out-of-fold predictions as
    decoded with the choices) from the crossfit step's outputs; when cross-fitting did not run,
    nothing is trained (the saved ensemble stays)."""
    from handwriting_pipeline.fieldreader.model import FieldReader

    if readings is None or len(readings) == 0:
        return not_built()
    readers = {int(row.fold): FieldReader.load(row.model_dir) for row in folds.itertuples()}
    settings = FieldReaderTrainSettings.from_params(params)
    reader, predictions = build_ensemble(readers, train_forms, readings, settings, bool(settings.trainer.progress_bar))
    return reader, choices_table(reader), predictions


def not_built() -> tuple[NotTrained, pd.DataFrame, pd.DataFrame]:
    """What :func:`ensemble_on_oof` gives without out-of-fold readings: nothing saved, no choices,
    no predictions."""
    from handwriting_pipeline.predictions import empty_predictions

    return (NotTrained("no out-of-fold readings (train_fieldreader.crossfit.folds = 0)"),
            pd.DataFrame(columns=CHOICE_COLUMNS), empty_predictions())


__all__ = ["CHOICE_COLUMNS", "Choice", "all_right", "build_ensemble", "choices_table", "choose_lexicon", "ensemble_on_oof",
           "fold_forms", "not_built", "predictions_table", "read_folds", "style_choice"]
