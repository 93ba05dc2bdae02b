"""The 'extract' pipeline, generated from the registry: every enabled engine reads ``evaluation_forms``.

``check_extract_engines`` runs first and stops the run when an enabled engine cannot work; then
one node ``extract_<method>`` per registered engine writes ``predictions_<method>`` (the catalog's
``predictions_{method}`` dataset factory). An engine's node gets the response cache when the
engine is ``cacheable``, the run's form (``params:form``: an engine that reads any form spec is
built for it), its credentials when it declares a ``credentials`` section and its
``catalog_inputs`` (Donut: ``donut_model``).
"""

from kedro.pipeline import Node, Pipeline

from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.pipelines.extract import nodes
from handwriting_pipeline.registry import engine_class, engine_methods, predictions_dataset


def engine_node(method: str, cls: type[Engine]) -> Node:
    """The node ``extract_<method>`` with the inputs its engine declares."""
    inputs = {"forms": "evaluation_forms", "params": "params:extract", "status": "extract_engine_status",
              "form": "params:form"}
    if cls.cacheable and cls.needs_image:
        inputs["cache"] = "extract_cache"
    if cls.credentials:
        inputs["credentials"] = "extract_credentials"
    inputs.update(cls.catalog_inputs)
    return Node(nodes.extract_node(method), inputs, predictions_dataset(method), name=f"extract_{method}")


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'extract' pipeline."""
    classes = {method: engine_class(method) for method in engine_methods()}
    datasets = sorted({d for cls in classes.values() for d in cls.catalog_inputs.values()})
    check = Node(nodes.check_engines,
                 {"params": "params:extract", "credentials": "extract_credentials", "form": "params:form",
                  **{d: d for d in datasets}},
                 "extract_engine_status", name="check_extract_engines")
    return Pipeline([check, *(engine_node(m, cls) for m, cls in classes.items())], tags="extract")
