"""The 'ensemble' pipeline: ``predictions_<engine>`` -> ``predictions_vote``, ``review_queue``,
``predictions_llm``, ``llm_variability``.

Kedro nodes have fixed inputs, so both nodes take every engine's table and choose among them
with ``ensemble.inputs`` (an empty table = the engine did not run).
"""

from kedro.pipeline import Pipeline, node

from handwriting_pipeline.pipelines.ensemble.nodes import engine_calibrations, llm_predictions, vote_predictions
from handwriting_pipeline.registry import engine_class, engine_methods, predictions_dataset


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'ensemble' pipeline."""
    engine_inputs = {engine: predictions_dataset(engine) for engine in engine_methods()}
    models = sorted({d for e in engine_methods() for d in engine_class(e).catalog_inputs.values()})
    return Pipeline([
        node(engine_calibrations, inputs={d: d for d in models}, outputs="engine_calibrations",
             name="engine_calibrations"),
        node(
            vote_predictions,
            inputs={"params": "params:ensemble", "calibrations": "engine_calibrations", **engine_inputs},
            outputs=["predictions_vote", "review_queue"],
            name="ensemble_vote",
        ),
        node(
            llm_predictions,
            inputs={"forms": "evaluation_forms", "cache": "ensemble_cache", "credentials": "ensemble_credentials",
                    "params": "params:ensemble", "prompts": "llm_prompts", "hint_forms": "llm_hint_forms",
                    "hint_readings": "llm_hint_readings", **engine_inputs},
            outputs=["predictions_llm", "llm_variability"],
            name="ensemble_llm",
        ),
    ])
