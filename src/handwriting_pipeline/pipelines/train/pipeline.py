"""The 'train' pipeline: the training graph of every trained engine, registered in :data:`TRAINING`
(trained engine -> its :class:`~handwriting_pipeline.registry.Step` s); ``train.models`` says which
of them train in a run (the others' skippable steps give their ``skipped`` outputs: the saved
model stays as it is).

Inputs: ``train_forms`` (from curation) and each engine's parameter block. No step reads
``validation_forms``: every engine chooses its checkpoints and settings on held-out *train* forms
(the field reader's ``fieldreader_split``).
Outputs: the engines' model datasets (``fieldreader_model``, ``donut_model``) and their reports
(``fieldreader_history``, ``training_history``, ``training_history_plot``).

**Adding a trained engine**: its engine class in :data:`handwriting_pipeline.registry.ENGINES`
(its ``catalog_inputs`` name the model dataset) and its steps in :data:`TRAINING`, one of them
writing that dataset.
"""

from kedro.pipeline import Node, Pipeline

from handwriting_pipeline.donut import recipe as donut
from handwriting_pipeline.fieldreader import crossfit, oof
from handwriting_pipeline.fieldreader import recipe as fieldreader
from handwriting_pipeline.pipelines.train.nodes import (
    ENSEMBLE_MODEL,
    add_engine_calibrations,
    add_ensemble_guarantees,
    train_step,
)
from handwriting_pipeline.registry import Step

FIELDREADER = "params:train_fieldreader"
DONUT, DONUT_HOLDOUT = "params:train", "donut_holdout_forms"

#: trained engine -> its training steps, in the order they run
TRAINING: dict[str, list[Step]] = {
    # hold out train forms -> fine-tune on the fit forms' lines -> lexicon and calibration on the
    # held-out ones -> style layer (fit on the fit forms, weighed on the held-out ones) -> the
    # untrained engines calibrated on the held-out ones (another form than HSF) -> fieldreader_model
    "fieldreader": [
        Step(fieldreader.hold_out_forms, {"train_forms": "train_forms", "params": FIELDREADER},
             "fieldreader_split", "hold_out_fieldreader_forms"),
        Step(fieldreader.fine_tune, {"train_forms": "train_forms", "split": "fieldreader_split", "params": FIELDREADER,
                                     "form": "params:form"},
             ["fieldreader_tuned", "fieldreader_history"], "fine_tune_fieldreader", skipped=fieldreader.not_trained),
        Step(fieldreader.add_lexicon_and_calibration,
             {"reader": "fieldreader_tuned", "train_forms": "train_forms", "split": "fieldreader_split",
              "params": FIELDREADER}, "fieldreader_known", "add_fieldreader_lexicon_and_calibration"),
        Step(fieldreader.add_style_layer,
             {"reader": "fieldreader_known", "train_forms": "train_forms", "split": "fieldreader_split",
              "params": FIELDREADER}, "fieldreader_styled", "fit_fieldreader_style_layer"),
        # on a form the shipped ensemble.vote calibrations do not cover: RapidOCR / Tesseract read
        # the held-out forms and are calibrated there, saved with the reader -> fieldreader_model
        Step(add_engine_calibrations,
             {"reader": "fieldreader_styled", "train_forms": "train_forms", "split": "fieldreader_split",
              "extract_params": "params:extract", "form": "params:form", "cache": "extract_cache"},
             "fieldreader_model", "calibrate_untrained_engines_on_form"),
        # out-of-fold readings of every train form (train_fieldreader.crossfit.folds; 0 = off):
        # per fold a reader fine-tuned on the other folds reads it; the fold readers stay in
        # crossfit.model_dir (resumable per fold)
        Step(crossfit.crossfit_readings, {"train_forms": "train_forms", "params": FIELDREADER, "form": "params:form"},
             ["fieldreader_oof_readings", "fieldreader_crossfit_folds"], "crossfit_fieldreader",
             skipped=crossfit.not_run),
        # the fold readers as one reader, its lexicon / style / calibration chosen on the
        # out-of-fold forms with paired intervals -> fieldreader_ensemble_model (the
        # fieldreader_ensemble engine), the choices table and the out-of-fold forms' predictions
        # as decoded with those choices (where the vote's and trust's choices are made)
        Step(oof.ensemble_on_oof, {"readings": "fieldreader_oof_readings", "folds": "fieldreader_crossfit_folds",
                                   "train_forms": "train_forms", "params": FIELDREADER},
             ["fieldreader_ensemble_built", "fieldreader_oof_choices", "fieldreader_oof_predictions"],
             "build_fieldreader_ensemble",
             skipped=oof.not_built),
        # digitize's guarantee for the cascade the ensemble leads (RapidOCR reading the forms it
        # escalates), fitted on the out-of-fold forms and saved with it -> fieldreader_ensemble_model
        Step(add_ensemble_guarantees,
             {"reader": "fieldreader_ensemble_built", "oof_predictions": "fieldreader_oof_predictions",
              "train_forms": "train_forms", "extract_params": "params:extract", "ensemble_params": "params:ensemble",
              "digitize_params": "params:digitize", "cache": "extract_cache"},
             ENSEMBLE_MODEL, "fit_fieldreader_ensemble_guarantees"),
    ],
    # split (checkpoints are chosen on the field reader's held-out train forms, never on
    # validation) -> tokenizer -> model -> synthetic pretraining -> fine-tuning -> donut_model
    # and the history
    "donut": [
        Step(donut.split_forms, {"train_forms": "train_forms", "split": "fieldreader_split"},
             ["donut_fit_forms", DONUT_HOLDOUT], "split_donut_forms"),
        Step(donut.build_tokenizer, {"train_forms": "donut_fit_forms", "params": DONUT, "form": "params:form"},
             "donut_tokenizer", "build_donut_tokenizer"),
        Step(donut.build_model, {"tokenizer": "donut_tokenizer", "params": DONUT, "form": "params:form"},
             "donut_initial_model", "build_donut_model"),
        Step(donut.pretrain_on_synthetic, {"bundle": "donut_initial_model", "holdout_forms": DONUT_HOLDOUT,
                                           "params": DONUT},
             ["donut_pretrained_model", "donut_pretrain_history"], "pretrain_donut_on_synthetic",
             skipped=donut.not_trained),
        Step(donut.fine_tune, {"bundle": "donut_pretrained_model", "train_forms": "donut_fit_forms",
                               "holdout_forms": DONUT_HOLDOUT, "params": DONUT},
             ["donut_model", "donut_finetune_history"], "fine_tune_donut", skipped=donut.not_trained),
        Step(donut.training_report, {"pretrain_history": "donut_pretrain_history",
                                     "finetune_history": "donut_finetune_history"},
             ["training_history", "training_history_plot"], "report_donut_training"),
    ],
}


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'train' pipeline: every registered trained engine's steps, tagged with its name."""
    trainable = list(TRAINING)
    nodes = []
    for method, steps in TRAINING.items():
        for step in steps:
            models = {"models": "params:train.models", "run_form": "params:form"} if step.skipped is not None else {}
            nodes.append(Node(train_step(method, step, trainable), {**models, **step.inputs}, step.outputs,
                              name=step.name, tags=[method]))
    return Pipeline(nodes)
