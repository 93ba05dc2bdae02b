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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def separate_cluster():
    """``dask scheduler`` + two ``dask worker`` processes on 127.0.0.1, as a user with several
    machines starts them (each its own process group; torn down after the test)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from distributed import Client

    root = Path(__file__).resolve().parents[3]
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--dashboard-address", ":0", "--no-show"], **quiet)]
    try:
        procs += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                    "--dashboard-address", ":0", "--memory-limit", "0"], **quiet) for _ in range(2)]
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.timeout(300)
def test_a_separate_scheduler_gives_the_local_pools_records_byte_for_byte(monkeypatch, tmp_path, mixed_folder,
                                                                          separate_cluster):
    """The scheduler and two workers are separate processes (not a LocalCluster); the
    records equal the local pool's (2 worker processes) byte for byte, apart from the measured
    seconds, in input order, and every form is read once."""
    import json

    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.digitize.core import make_plan

    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)
    folder, expected = mixed_folder
    params = _params()
    log = tmp_path / "calls.log"

    def run(cache, **dask):
        digitize = {**params["digitize"], "engines": ["toy"], "progress": False, "partition_size": 2, "workers": 2,
                    "dask": dask}
        plan = make_plan(digitize, {**params["extract"], "toy": {"log": str(log)}}, params["ensemble"], {},
                         ResponseCache(tmp_path / cache), datasets={})
        records = list(digitize_records(plan, list_images(folder)))
        return [json.dumps({k: v for k, v in r.items() if k != "seconds"}, sort_keys=True, default=repr).encode()
                for r in records]

    distributed = run("cache_dask", scheduler=separate_cluster)
    readable = sum(1 for e in expected.values() if e is None)
    assert sorted(calls(log)) == sorted(set(calls(log))) and len(calls(log)) == readable
    assert distributed == run("cache_pool")
    assert len(distributed) == len(expected)
