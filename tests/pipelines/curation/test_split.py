"""Split invariants: sizes, proportional scaling, seeded, disjoint, copies kept together."""

from __future__ import annotations

import pandas as pd
import pytest

from handwriting_pipeline.pipelines.curation.candidates import Candidates, _labels_frame
from handwriting_pipeline.pipelines.curation.nodes import (
    assign_splits,
    split_forms,
    split_sizes,
)

PARAMS = {"split": {"sizes": {"train": 1400, "validation": 199, "test": 500}, "seed": 42, "surplus": "train"}}


def _candidates(n: int, copies: dict[str, int] | None = None) -> Candidates:
    rows = [{"file_name": f"f{i:04d}.png", "split": "", "DATE": "8/1/89", "group": f"f{i:04d}"} for i in range(n)]
    for group, count in (copies or {}).items():
        rows += [{"file_name": f"{group}_{k}.png", "split": "", "group": group} for k in range(count)]
    return Candidates("test", labels=_labels_frame(rows))


def test_default_sizes_with_the_articles_number_of_forms():
    out = split_forms(_candidates(2052, {"f0067_25": 47}), PARAMS)
    assert out.labels["split"].value_counts().to_dict() == {"train": 1400, "validation": 199, "test": 500}


@pytest.mark.parametrize("n, expected", [(300, {"train": 200, "validation": 28, "test": 72}),
                                         (20, {"train": 13, "validation": 2, "test": 5}),
                                         (3, {"train": 2, "validation": 0, "test": 1})])
def test_fewer_forms_are_split_proportionally(n, expected):
    assert split_sizes(n) == expected
    out = split_forms(_candidates(n), PARAMS)
    assert out.labels["split"].value_counts().reindex(list(expected), fill_value=0).to_dict() == expected


def test_surplus_goes_to_train_or_is_dropped():
    assert split_sizes(2200) == {"train": 1501, "validation": 199, "test": 500}
    out = split_forms(_candidates(2200), {"split": {**PARAMS["split"], "surplus": "drop"}})
    assert len(out.labels) == 2099
    assert len([d for d in out.dropped if d["stage"] == "split"]) == 101


def test_split_is_seeded_and_disjoint():
    a = split_forms(_candidates(500), PARAMS).labels.set_index("file_name")["split"]
    b = split_forms(_candidates(500), PARAMS).labels.set_index("file_name")["split"]
    c = split_forms(_candidates(500), {"split": {**PARAMS["split"], "seed": 7}}).labels.set_index("file_name")["split"]
    assert a.equals(b)
    assert not a.equals(c)
    assert a.index.is_unique  # each form in exactly one split
    assert set(a) == {"train", "validation", "test"}


def test_copies_of_one_image_stay_in_one_split():
    cands = _candidates(400, {"blank": 30, "dup_a": 3, "dup_b": 2})
    for seed in range(5):
        out = split_forms(cands, {"split": {**PARAMS["split"], "seed": seed}})
        per_group = out.labels.groupby("group")["split"].nunique()
        assert (per_group == 1).all()
        assert len(out.labels) == 435


def test_assign_splits_meets_sizes_exactly_when_groups_allow():
    groups = {"big": 10, **{f"s{i}": 1 for i in range(40)}}
    assignment = assign_splits(groups, {"train": 30, "validation": 5, "test": 15}, seed=1)
    sizes = pd.Series({g: groups[g] for g in assignment}).groupby(pd.Series(assignment)).sum().to_dict()
    assert sizes == {"train": 30, "validation": 5, "test": 15}


def test_presplit_sources_keep_their_splits():
    cands = _candidates(10)
    cands.labels["split"] = ["validation"] * 10
    cands.presplit = True
    assert (split_forms(cands, PARAMS).labels["split"] == "validation").all()
