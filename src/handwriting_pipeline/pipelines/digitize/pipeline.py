"""The 'digitize' pipeline: ``digitize_inputs`` (a folder or glob of scans, read lazily) ->
``digitized_forms`` (forms.jsonl + review crops), ``digitized_forms_csv``, ``digitize_review_queue``,
``digitize_summary``, all of the form ``params:form`` names.

The engines' catalog inputs (trained models) come from the registry, like extract's.
"""

from kedro.pipeline import Node, Pipeline

from handwriting_pipeline.pipelines.digitize import nodes
from handwriting_pipeline.registry import engine_class, engine_methods


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'digitize' pipeline."""
    models = sorted({d for m in engine_methods() for d in engine_class(m).catalog_inputs.values()})
    return Pipeline([
        Node(nodes.plan_digitize,
             {"params": "params:digitize", "extract_params": "params:extract", "ensemble_params": "params:ensemble",
              "credentials": "extract_credentials", "cache": "extract_cache",
              "llm_credentials": "ensemble_credentials", "llm_cache": "ensemble_cache", "form": "params:form",
              **{d: d for d in models}},
             "digitize_plan", name="plan_digitize"),
        Node(nodes.digitize_forms, {"inputs": "digitize_inputs", "plan": "digitize_plan"}, "digitized_forms",
             name="digitize_forms"),
        Node(nodes.forms_table, ["digitized_forms", "params:form"], "digitized_forms_csv", name="digitized_forms_csv"),
        Node(nodes.review_queue, ["digitized_forms", "params:form"], "digitize_review_queue",
             name="digitize_review_queue"),
        Node(nodes.digitize_summary, ["digitized_forms", "params:form", "digitize_plan"], "digitize_summary",
             name="digitize_summary"),
        Node(nodes.check_digitized, "digitize_summary", None, name="check_digitized"),
    ], tags="digitize")
