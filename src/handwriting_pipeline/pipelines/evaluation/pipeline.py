"""The 'evaluation' pipeline: FLA / CBA / coverage / cost of every method on the evaluation forms.

Inputs: ``evaluation_forms``, one ``predictions_<method>`` per method in
:func:`handwriting_pipeline.registry.all_methods` (from the extract and ensemble pipelines),
``params:form`` (the evaluated form: its fields are scored, the report names it),
``params:evaluation``, ``params:ensemble`` (the engines each ensemble merges: its cost) and
``cascade_escalation`` (the cascade's share of escalated forms, for its cost and its section in the
report). Outputs (data/08_reporting): ``evaluation_metrics`` (metrics.csv),
``evaluation_report`` (metrics.md), ``evaluation_accuracy_plot``, ``evaluation_key_accuracy_plot``,
``evaluation_form_scores``, ``evaluation_form_errors``, ``evaluation_failures`` (failures.json:
per method and for the input files; the project hook ends the run non-zero when a share is above
``evaluation.max_failure_share``) and the normalized fields:
``evaluation_normalized_forms`` (normalized_forms.csv), ``evaluation_normalized_metrics``
(normalized_metrics.csv); the review curve of every method with confidences:
``evaluation_review_curves`` (review_curve.json), ``evaluation_review_curve_plot`` (review_curve.png).
``run_info`` (filled by the hook) dates the report.
"""

from kedro.pipeline import Pipeline, node

from handwriting_pipeline.registry import all_methods, predictions_dataset

from .nodes import (
    guarantee_checks,
    plot_accuracy,
    plot_key_accuracy,
    plot_review_curves,
    render_report,
    review_curves,
    score_normalized,
    score_predictions,
    summarise_metrics,
)
from .provenance import collect_failures


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'evaluation' pipeline."""
    # the forms, the parameters and every method's predictions: what each scoring node reads
    scored = {"forms": "evaluation_forms", "params": "params:evaluation", "form": "params:form",
              **{method: predictions_dataset(method) for method in all_methods()}}
    report_inputs = ["evaluation_metrics", "evaluation_forms", "params:evaluation", "evaluation_failures", "run_info",
                     "evaluation_normalized_metrics", "evaluation_review_curves", "cascade_escalation",
                     "engine_choices", "evaluation_guarantee", "params:form", "engine_calibrations", "params:ensemble"]
    return Pipeline(
        [
            node(score_predictions, inputs=scored, outputs=["evaluation_form_scores", "evaluation_form_errors"],
                 name="score_predictions"),
            node(summarise_metrics, inputs=["evaluation_form_scores", "params:evaluation", "params:ensemble",
                                             "cascade_escalation", "params:form"],
                 outputs="evaluation_metrics", name="summarise_metrics"),
            node(score_normalized, inputs=scored,
                 outputs=["evaluation_normalized_forms", "evaluation_normalized_metrics"], name="score_normalized"),
            node(collect_failures, inputs=scored, outputs="evaluation_failures", name="collect_failures"),
            node(review_curves, inputs=scored, outputs="evaluation_review_curves", name="review_curves"),
            node(guarantee_checks, inputs={**scored, "ensemble_params": "params:ensemble",
                                           "calibrations": "engine_calibrations", "guarantees": "engine_guarantees",
                                           "recalibrations": "engine_recalibrations",
                                           "cascade": "cascade_escalation"},
                 outputs="evaluation_guarantee", name="guarantee_checks"),
            node(plot_review_curves, inputs=["evaluation_review_curves", "evaluation_metrics"],
                 outputs="evaluation_review_curve_plot", name="plot_review_curves"),
            node(render_report, inputs=report_inputs, outputs="evaluation_report", name="render_report"),
            node(plot_accuracy, inputs=["evaluation_metrics", "params:form"], outputs="evaluation_accuracy_plot",
                 name="plot_accuracy"),
            node(plot_key_accuracy, inputs=["evaluation_metrics", "params:form"],
                 outputs="evaluation_key_accuracy_plot", name="plot_key_accuracy"),
        ]
    )
