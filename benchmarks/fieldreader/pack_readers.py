"""Fold readers made small enough to travel (not a test): a machine lent for a run (a GPU
machine) hands back at most 64 MiB, and a fold reader is 24 MB (weights + ONNX graph).

``pack`` keeps of each complete fold under the given crossfit folders its JSON / CSV files and
the *difference* of its weights from the stock recognizer's, in float16 (about 6 MB; gzip-ed
tar parts of at most ``--part-mb``). ``unpack`` rebuilds each fold folder: stock weights plus the
difference (largest error about 1e-4 per weight), ``model.onnx`` exported again, so the crossfit
benchmarks load the folds as they would a fold trained here. How close the rebuilt readers read
to the originals is measured by ``unpack --check``: the rebuilt reader reads its fold's forms
again and the share of fields read as the original read them (its ``readings.csv``) is printed.

Usage::

    python benchmarks/fieldreader/pack_readers.py pack data/06_models/crossfit_a data/06_models/crossfit_b --out OUT/readers
    python benchmarks/fieldreader/pack_readers.py unpack OUT/readers_*.tar.gz --dest data/06_models --check 40
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DELTA_FILE = "weights_delta_fp16.pt"
SMALL = ("plan.json", "done.json", "history.csv", "readings.csv", "model/fieldreader.json")


def _delta(model_dir: Path) -> bytes:
    import torch

    from handwriting_pipeline.fieldreader.model import WEIGHTS_FILE, FieldReader, build_network

    weights = torch.load(model_dir / WEIGHTS_FILE, map_location="cpu")
    stock = build_network(alphabet=FieldReader.load(model_dir).config.alphabet).state_dict()
    delta = {k: (v - stock[k]).half() if v.is_floating_point() else v for k, v in weights.items()}
    buffer = io.BytesIO()
    torch.save(delta, buffer)
    return buffer.getvalue()


def pack(folders: list[Path], out: str, part_mb: float) -> list[Path]:
    from handwriting_pipeline.fieldreader.crossfit import is_complete

    entries = []  # (archive name, bytes)
    for folder in folders:
        for fold in sorted(p for p in folder.glob("fold_*") if is_complete(p)):
            base = f"{folder.name}/{fold.name}"
            entries += [(f"{base}/{name}", (fold / name).read_bytes()) for name in SMALL if (fold / name).is_file()]
            entries.append((f"{base}/model/{DELTA_FILE}", _delta(fold / "model")))
        entries += [(f"{folder.name}/{name}", (folder / name).read_bytes())
                    for name in ("readings.csv", "folds.csv") if (folder / name).is_file()]
    parts, size, current = [], 0, []
    for entry in entries:
        if current and size + len(entry[1]) > part_mb * 2**20 * 1.3:  # gzip saves about a third
            parts.append(current)
            current, size = [], 0
        current.append(entry)
        size += len(entry[1])
    parts.append(current)
    written = []
    for i, part in enumerate(parts):
        path = Path(f"{out}_{i}.tar.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for name, data in part:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        written.append(path)
        print(f"{path}: {len(part)} files, {path.stat().st_size / 2**20:.1f} MiB")
    return written


def unpack(archives: list[Path], dest: Path, check: int) -> None:
    import json

    import torch

    from handwriting_pipeline.fieldreader.model import CONFIG_FILE, WEIGHTS_FILE, FieldReader, FieldReaderConfig, build_network

    for archive in archives:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    for delta_file in sorted(dest.glob(f"*/fold_*/model/{DELTA_FILE}")):
        model_dir = delta_file.parent
        config = FieldReaderConfig.from_json(json.loads((model_dir / CONFIG_FILE).read_text()))
        net = build_network(alphabet=config.alphabet)
        stock = net.state_dict()
        delta = torch.load(delta_file, map_location="cpu")
        net.load_state_dict({k: stock[k] + v.float() if v.is_floating_point() else v for k, v in delta.items()})
        net.eval()
        FieldReader(net, config).save(model_dir)
        delta_file.unlink()
        print(f"{model_dir}: rebuilt ({WEIGHTS_FILE}, model.onnx)")
        if check:
            _check(model_dir.parent, check)


def _check(fold: Path, forms: int) -> None:
    """The rebuilt reader reads the first ``forms`` forms of its fold again: share of fields read
    as the original reader read them on the machine that trained it."""
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.crossfit import load_readings, read_fold
    from handwriting_pipeline.fieldreader.model import FieldReader

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import SHARED

    original = load_readings(fold / "readings.csv")
    names = list(dict.fromkeys(original["file_name"]))[:forms]
    train, _ = read_donut_folder(SHARED / "train")
    again = read_fold(FieldReader.load(fold / "model"), train.subset(names), names, int(original["fold"].iloc[0]))
    merged = original.merge(again, on=["file_name", "field"], suffixes=("", "_again"))
    same = float((merged["reading"] == merged["reading_again"]).mean())
    print(f"{fold}: {len(merged)} fields of {len(names)} forms read again, {100 * same:.2f} % as the original")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--out", required=True, help="archive path prefix (parts <prefix>_<i>.tar.gz)")
    p.add_argument("--part-mb", type=float, default=15.0)
    u = sub.add_parser("unpack")
    u.add_argument("archives", nargs="+", type=Path)
    u.add_argument("--dest", type=Path, default=ROOT / "data" / "06_models")
    u.add_argument("--check", type=int, default=0, help="re-read the first N forms of each fold (0: no check)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    if args.command == "pack":
        pack(args.folders, args.out, args.part_mb)
    else:
        unpack(args.archives, args.dest, args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
