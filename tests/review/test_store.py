"""The corrections store: appended at once, durable across a killed process, conflicts kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from handwriting_pipeline.review.store import CorrectionStore, InvalidDecision, check_value


def test_decisions_append_and_conflicts(tmp_path: Path):
    store = CorrectionStore(tmp_path / "c.sqlite")
    d1, c1 = store.record("a.png#1", "CITY", "Murray", "Murrav", "ann")
    assert d1.status == "corrected" and d1.action == "correct" and c1 == []
    d2, c2 = store.record("a.png#1", "CITY", "Murray", "Murrav", "bob")   # agrees: no conflict
    assert c2 == []
    d3, c3 = store.record("a.png#1", "CITY", "Murrav", "Murrav", "cy")    # disagrees: both earlier kept
    assert d3.status == "confirmed" and {d.reviewer for d in c3} == {"ann", "bob"}
    store.record("a.png#1", "ZIP", "42071", "42071", "ann")
    store.record("a.png#1", "ZIP", "42071", "42071", "ann")                 # own revision: no conflict
    assert [d.id for d in store.decisions()] == sorted(d.id for d in store.decisions())
    assert len(store.decisions(form="a.png#1", field="CITY")) == 3          # nothing overwritten
    assert store.latest()[("a.png#1", "CITY")].value == "Murrav"
    assert list(store.conflicts()) == [("a.png#1", "CITY")]
    assert CorrectionStore(tmp_path / "c.sqlite").latest()[("a.png#1", "CITY")].reviewer == "cy"


@pytest.mark.parametrize("field, value, message", [
    ("NAME", "x", "unknown field"),
    ("CITY", "<script>", "not allowed"),
    ("ZIP", "4207l", "not allowed"),
    ("CITY", "A" * 41, "at most"),
    ("DATE", "1/2/89\x00", "not allowed"),
])
def test_invalid_values_are_refused(field, value, message):
    with pytest.raises(InvalidDecision, match=message):
        check_value(field, value)


def test_values_kept_as_written():
    assert check_value("CITY", "  St.  Louis, ") == "St. Louis,"
    assert check_value("STATE", "") == "None"
    assert check_value("DATE", "June 30, 1989") == "June 30, 1989"


WRITER = """
import sys, time
from handwriting_pipeline.review.store import CorrectionStore
store = CorrectionStore(sys.argv[1])
store.record("a.png#1", "ZIP", "42071", "4207", "ann")
print("saved", flush=True)
time.sleep(60)
"""


def test_a_killed_process_loses_no_decision(tmp_path: Path):
    path = tmp_path / "c.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "saved"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    [decision] = CorrectionStore(path).decisions()
    assert (decision.field, decision.value, decision.reviewer) == ("ZIP", "42071", "ann")
