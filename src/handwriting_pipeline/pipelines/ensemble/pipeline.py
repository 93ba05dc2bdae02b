"""The 'ensemble' pipeline: ``predictions_<engine>`` -> every registered ensemble's
``predictions_<ensemble>`` (``predictions_vote`` + ``review_queue``, ``predictions_llm`` +
``llm_variability``, ``predictions_cascade`` + ``cascade_escalation``).

Each ensemble of :data:`handwriting_pipeline.registry.ENSEMBLES` is one node, a
:class:`~handwriting_pipeline.registry.Step` in :data:`ENSEMBLE_STEPS` (its own inputs and
outputs). Kedro nodes have fixed inputs, so every ensemble node also takes every engine's table
and chooses among them with ``ensemble.inputs`` (an empty table = the engine did not run);
``ensemble.methods`` says which ensembles do any work.
"""

from kedro.pipeline import Pipeline, node

from handwriting_pipeline.pipelines.ensemble.nodes import (
    cascade_predictions,
    engine_calibrations,
    engine_choices,
    engine_guarantees,
    engine_recalibrations,
    llm_predictions,
    vote_predictions,
)
from handwriting_pipeline.registry import (
    Step,
    engine_class,
    engine_methods,
    ensemble_methods,
    load,
    lookup,
    predictions_dataset,
)

PARAMS, CALIBRATIONS, FORM = "params:ensemble", "engine_calibrations", "params:form"
RECALIBRATIONS = "engine_recalibrations"

#: registered ensemble -> its node (the engines' tables are added to its inputs)
ENSEMBLE_STEPS: dict[str, Step] = {
    "vote": Step(vote_predictions, {"params": PARAMS, "calibrations": CALIBRATIONS, "form": FORM,
                                    "recalibrations": RECALIBRATIONS},
                 ["predictions_vote", "review_queue"], "ensemble_vote"),
    "llm": Step(llm_predictions, {"forms": "evaluation_forms", "cache": "ensemble_cache",
                                  "credentials": "ensemble_credentials", "params": PARAMS, "prompts": "llm_prompts",
                                  "hint_forms": "llm_hint_forms", "hint_readings": "llm_hint_readings", "form": FORM},
                ["predictions_llm", "llm_variability"], "ensemble_llm"),
    "cascade": Step(cascade_predictions, {"params": PARAMS, "calibrations": CALIBRATIONS, "form": FORM,
                                          "recalibrations": RECALIBRATIONS},
                    ["predictions_cascade", "cascade_escalation"], "ensemble_cascade"),
}


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'ensemble' pipeline: the trained engines' calibrations, then one node per
    registered ensemble."""
    engine_inputs = {engine: predictions_dataset(engine) for engine in engine_methods()}
    models = sorted({d for e in engine_methods() for d in engine_class(e).catalog_inputs.values()})
    steps = [lookup(ENSEMBLE_STEPS, method, "ensemble node") for method in ensemble_methods()]
    return Pipeline([
        node(engine_calibrations, inputs={d: d for d in models}, outputs=CALIBRATIONS, name="engine_calibrations"),
        node(engine_recalibrations, inputs={d: d for d in models}, outputs=RECALIBRATIONS,
             name="engine_recalibrations"),
        node(engine_choices, inputs={d: d for d in models}, outputs="engine_choices", name="engine_choices"),
        node(engine_guarantees, inputs={d: d for d in models}, outputs="engine_guarantees", name="engine_guarantees"),
        *(node(load(step.func), inputs={**step.inputs, **engine_inputs}, outputs=step.outputs, name=step.name)
          for step in steps),
    ])
