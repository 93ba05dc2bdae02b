"""The 'curation' pipeline: raw forms -> labelled, validated, split, versioned form sets.

One DAG for all sources; ``curation.source`` (synthetic | sd19_pages | donut_folder |
hf_dataset) says which source node does the work, the others pass an empty set through
without opening their (lazy) raw inputs::

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

from .nodes import (
    annotate_forms,
    crop_pages,
    export_splits,
    generate_synthetic_forms,
    read_donut_splits,
    read_hf_dataset,
    select_source,
    split_forms,
    validate_forms,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the 'curation' pipeline."""
    return Pipeline(
        [
            node(generate_synthetic_forms, "params:curation", "synthetic_candidates",
                 name="generate_synthetic_forms", tags=["source_synthetic"]),
            node(crop_pages, ["sd19_pages", "params:curation"], "sd19_crops",
                 name="crop_pages", tags=["source_sd19_pages"]),
            node(annotate_forms, ["sd19_crops", "sd19_labels", "params:curation"], "sd19_candidates",
                 name="annotate_forms", tags=["source_sd19_pages"]),
            node(read_donut_splits, ["donut_folder", "params:curation"], "donut_candidates",
                 name="read_donut_splits", tags=["source_donut_folder"]),
            node(read_hf_dataset, ["hf_forms", "params:curation"], "hf_candidates",
                 name="read_hf_dataset", tags=["source_hf_dataset"]),
            node(select_source,
                 ["params:curation", "synthetic_candidates", "sd19_candidates", "donut_candidates", "hf_candidates"],
                 "selected_candidates", name="select_source"),
            node(validate_forms, ["selected_candidates", "params:curation"], "valid_candidates",
                 name="validate_forms"),
            node(split_forms, ["valid_candidates", "params:curation"], "split_candidates", name="split_forms"),
            node(export_splits, ["split_candidates", "params:curation"],
                 ["train_forms", "validation_forms", "test_forms", "curated_labels", "curation_report"],
                 name="export_splits"),
        ],
        tags=["curation"],
    )
