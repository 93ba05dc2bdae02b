"""The 'train' pipeline: tokenizer -> Donut -> synthetic pretraining -> fine-tuning -> outputs.

Inputs: ``train_forms``, ``validation_forms`` (from curation), ``params:train``.
Outputs: ``donut_model`` (versioned save_pretrained folder), ``training_history`` (CSV),
``training_history_plot`` (PNG).
"""

from kedro.pipeline import Node, Pipeline

from .nodes import build_model, build_tokenizer, fine_tune, pretrain_on_synthetic, training_report


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'train' pipeline."""
    return Pipeline(
        [
            Node(build_tokenizer, ["train_forms", "params:train"], "donut_tokenizer", name="build_donut_tokenizer"),
            Node(build_model, ["donut_tokenizer", "params:train"], "donut_initial_model", name="build_donut_model"),
            Node(pretrain_on_synthetic, ["donut_initial_model", "validation_forms", "params:train"],
                 ["donut_pretrained_model", "donut_pretrain_history"], name="pretrain_donut_on_synthetic"),
            Node(fine_tune, ["donut_pretrained_model", "train_forms", "validation_forms", "params:train"],
                 ["donut_model", "donut_finetune_history"], name="fine_tune_donut"),
            Node(training_report, ["donut_pretrain_history", "donut_finetune_history"],
                 ["training_history", "training_history_plot"], name="report_donut_training"),
        ]
    )
