"""The 'train' pipeline, generated from the registry: every registered engine that declares
:meth:`~handwriting_pipeline.engines.base.Engine.training_steps` (today the field reader and
Donut) gets its steps as nodes; ``train.models`` says which of them train in a run.

Inputs: ``train_forms`` (from curation) and each engine's parameter block. No step reads
``validation_forms``: every engine chooses its checkpoints and settings on held-out *train* forms
(the field reader's ``fieldreader_split``).
Outputs: the engines' model datasets (``fieldreader_model``, ``donut_model``) and their reports
(``fieldreader_history``, ``training_history``, ``training_history_plot``).
"""

from kedro.pipeline import Node, Pipeline

from handwriting_pipeline.pipelines.train.nodes import train_step
from handwriting_pipeline.registry import engine_class, engine_methods


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'train' pipeline."""
    nodes = []
    for method in engine_methods():
        for step in engine_class(method).training_steps():
            models = {"models": "params:train.models"} if step.not_trained is not None else {}
            nodes.append(Node(train_step(method, step), {**models, **step.inputs}, step.outputs, name=step.name,
                              tags=[method]))
    return Pipeline(nodes)
