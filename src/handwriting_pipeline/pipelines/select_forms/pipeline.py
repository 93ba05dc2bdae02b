"""The 'select_forms' pipeline: test split or ``evaluation.data_dir`` -> ``evaluation_forms``
(checked against the form ``params:form`` names: its fields, its image size)."""

from kedro.pipeline import Node, Pipeline

from .nodes import select_evaluation_forms


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'select_forms' pipeline."""
    return Pipeline(
        [
            Node(
                select_evaluation_forms,
                inputs=["test_forms", "external_evaluation_forms", "params:evaluation", "params:form"],
                outputs="evaluation_forms",
                name="select_evaluation_forms",
            )
        ]
    )
