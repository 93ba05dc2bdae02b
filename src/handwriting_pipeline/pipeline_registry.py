"""Project pipelines.

* ``curation``   raw forms -> labelled, split, versioned form sets
* ``train``      curation + the training of every registered trained engine (field reader,
                 Donut; ``train.models``)
* ``extract``    choose the evaluation forms (test split or ``evaluation.data_dir``);
                 every enabled engine reads them
* ``ensemble``   merges the engines' outputs (offline vote, LLM)
* ``evaluation`` FLA / CBA / coverage / cost report
* ``evaluate``   extract + ensemble + evaluation
* ``digitize``   new, unlabelled scans (a folder or glob) -> forms.jsonl / forms.csv / review_queue.csv
* ``__default__`` everything but digitize (which needs a folder of scans)

Floor 9 (Kedro's entry points). May import: anything below; the only module outside
``pipelines/`` that imports ``pipelines/``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from handwriting_pipeline.pipelines import (
    curation,
    digitize,
    ensemble,
    evaluation,
    extract,
    select_forms,
    train,
)


def _group(namespace: str, pipeline: Pipeline) -> Pipeline:
    """The pipeline's nodes under a Kedro namespace (``kedro viz`` folds them into one group);
    dataset and parameter names stay as they are."""
    return Pipeline(pipeline, namespace=namespace, prefix_datasets_with_namespace=False)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines."""
    pipelines = {
        "curation": _group("curation", curation.create_pipeline()),
        "extract": _group("extract", select_forms.create_pipeline() + extract.create_pipeline()),
        "ensemble": _group("ensemble", ensemble.create_pipeline()),
        "evaluation": _group("evaluation", evaluation.create_pipeline()),
        "digitize": _group("digitize", digitize.create_pipeline()),
    }
    pipelines["train"] = pipelines["curation"] + _group("train", train.create_pipeline())
    pipelines["evaluate"] = pipelines["extract"] + pipelines["ensemble"] + pipelines["evaluation"]
    pipelines["__default__"] = pipelines["train"] + pipelines["evaluate"]
    return pipelines
