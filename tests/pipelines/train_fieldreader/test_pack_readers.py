"""benchmarks/fieldreader/pack_readers.py: fold readers packed as float16 differences from the
stock weights come back as readers whose weights differ by at most about 1e-4, with their files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from handwriting_pipeline.fieldreader.crossfit import READING_COLUMNS, is_complete, load_readings
from handwriting_pipeline.fieldreader.model import WEIGHTS_FILE, FieldReader
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "fieldreader" / "pack_readers.py"


def _fold(folder: Path) -> dict[str, torch.Tensor]:
    """A complete fold folder whose reader's weights moved away from the stock ones."""
    reader = FieldReader.stock()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in reader.net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=generator))
    reader.save(folder / "model")
    (folder / "done.json").write_text(json.dumps({"plan": {"fold": 0}, "wall_s": 1.0}))
    (folder / "plan.json").write_text(json.dumps({"fold": 0}))
    rows = [{"file_name": "a.png", "field": "ZIP", "reading": "None", "confidence": 0.5, "fold": 0, "gold": "None"}]
    pd.DataFrame(rows, columns=READING_COLUMNS).to_csv(folder / "readings.csv", index=False)
    return torch.load(folder / "model" / WEIGHTS_FILE)


def test_pack_then_unpack_rebuilds_the_fold_readers(tmp_path: Path) -> None:
    bench = load_script(SCRIPT, "pack_readers")
    weights = _fold(tmp_path / "crossfit_a" / "fold_0")
    parts = bench.pack([tmp_path / "crossfit_a"], str(tmp_path / "out" / "readers"), part_mb=15.0)
    assert parts and all(p.stat().st_size < 15 * 2**20 for p in parts)
    assert sum(p.stat().st_size for p in parts) < (tmp_path / "crossfit_a" / "fold_0" / "model" / WEIGHTS_FILE).stat().st_size

    bench.unpack(parts, tmp_path / "back", check=0)
    fold = tmp_path / "back" / "crossfit_a" / "fold_0"
    assert is_complete(fold) and not (fold / "model" / bench.DELTA_FILE).exists()
    rebuilt = torch.load(fold / "model" / WEIGHTS_FILE)
    assert rebuilt.keys() == weights.keys()
    assert max(float((rebuilt[k] - v).abs().max()) for k, v in weights.items() if v.is_floating_point()) < 1e-3
    assert FieldReader.load(fold / "model").onnx_file is not None  # the ONNX graph written again
    pd.testing.assert_frame_equal(load_readings(fold / "readings.csv"),
                                  load_readings(tmp_path / "crossfit_a" / "fold_0" / "readings.csv"))
