"""The same run mapped over a 2-worker Dask LocalCluster on 127.0.0.1: same records, every form
read once (the shared cache), results gathered in input order."""

from __future__ import annotations

import pytest

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.digitize import list_images
from handwriting_pipeline.digitize.core import digitize_records

from .test_digitize import _params
from .toy import ToyEngine, calls

pytest.importorskip("distributed")


@pytest.mark.timeout(300)
def test_a_local_cluster_gives_the_same_records_and_reads_each_form_once(monkeypatch, tmp_path, mixed_folder):
    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.digitize.core import make_plan

    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)
    folder, expected = mixed_folder
    params = _params()
    log = tmp_path / "calls.log"

    def plan(cache, **dask):
        digitize = {**params["digitize"], "engines": ["toy"], "progress": False, "partition_size": 2, "dask": dask}
        return make_plan(digitize, {**params["extract"], "toy": {"log": str(log)}}, params["ensemble"], {},
                         ResponseCache(tmp_path / cache), datasets={})

    inputs = list_images(folder)
    distributed = list(digitize_records(plan("cache_dask", n_workers=2, host="127.0.0.1"), inputs))
    readable = sum(1 for e in expected.values() if e is None)
    assert len(calls(log)) == readable and len(set(calls(log))) == readable
    local = list(digitize_records(plan("cache_local"), inputs))
    strip = ("seconds", "_files")
    assert [{k: v for k, v in r.items() if k not in strip} for r in distributed] == \
           [{k: v for k, v in r.items() if k not in strip} for r in local]
    assert [sorted(r.get("_files", {})) for r in distributed] == [sorted(r.get("_files", {})) for r in local]
