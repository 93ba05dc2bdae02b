"""The 'train_fieldreader' pipeline: ``train_forms`` -> ``fieldreader_model`` (versioned folder:
torch weights, ONNX export, lexicon, calibration, style layer) and ``fieldreader_history``."""

from kedro.pipeline import Node, Pipeline

from .nodes import add_knowledge, fine_tune_fieldreader, fit_style_layer, hold_out_forms


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'train_fieldreader' pipeline."""
    return Pipeline(
        [
            Node(hold_out_forms, ["train_forms", "params:train_fieldreader"], "fieldreader_split",
                 name="hold_out_fieldreader_forms"),
            Node(fine_tune_fieldreader, ["train_forms", "fieldreader_split", "params:train.models",
                                         "params:train_fieldreader"],
                 ["fieldreader_tuned", "fieldreader_history"], name="fine_tune_fieldreader"),
            Node(add_knowledge, ["fieldreader_tuned", "train_forms", "fieldreader_split", "params:train_fieldreader"],
                 "fieldreader_known", name="add_fieldreader_lexicon_and_calibration"),
            Node(fit_style_layer, ["fieldreader_known", "train_forms", "fieldreader_split", "params:train_fieldreader"],
                 "fieldreader_model", name="fit_fieldreader_style_layer"),
        ],
        tags="fieldreader",
    )
