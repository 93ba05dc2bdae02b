"""The 'curation' pipeline: raw forms -> labelled, validated, split, versioned form sets.

One DAG for all sources, built from the registry :data:`.sources.SOURCES`; ``curation.source``
(synthetic | sd19_pages | donut_folder | hf_dataset | reviewed) says which source node does the
work, the others pass an empty set through without opening their (lazy) raw inputs. The readers,
``validate_forms`` and ``export_splits`` also take ``params:form``, the run's form (its fields,
its image size, its name in the outputs)::

    params:curation ───────────────► generate_synthetic_forms ─► synthetic_candidates ─┐
    sd19_pages ─► crop_pages ─► sd19_crops ─► annotate_forms ◄─ sd19_labels            │
                                               └─► sd19_candidates ───────────────────┤
    donut_folder ─► read_donut_splits ─► donut_candidates ───────────────────────────┤
    hf_forms ─► read_hf_dataset ─► hf_candidates ────────────────────────────────────┤
                                                                  select_source ◄─────┘
      ─► selected_candidates ─► validate_forms ─► valid_candidates ─► split_forms
      ─► split_candidates ─► export_splits ─► train_forms, validation_forms, test_forms,
                                              curated_labels, curation_report
"""

from kedro.pipeline import Pipeline, node

from handwriting_pipeline.registry import load

from .nodes import export_splits, select_source, split_forms, validate_forms
from .sources import SOURCES


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'curation' pipeline: every registered source's reader nodes, then the common steps."""
    readers = [node(load(step.func), dict(step.inputs), step.outputs, name=step.name, tags=[f"source_{name}"])
               for name, source in SOURCES.items() for step in source.steps]
    return Pipeline(
        [
            *readers,
            node(select_source, {"params": "params:curation", **{name: s.output for name, s in SOURCES.items()}},
                 "selected_candidates", name="select_source"),
            node(validate_forms, ["selected_candidates", "params:curation", "params:form"], "valid_candidates",
                 name="validate_forms"),
            node(split_forms, ["valid_candidates", "params:curation"], "split_candidates", name="split_forms"),
            node(export_splits, ["split_candidates", "params:curation", "params:form"],
                 ["train_forms", "validation_forms", "test_forms", "curated_labels", "curation_report"],
                 name="export_splits"),
        ],
        tags=["curation"],
    )
