"""Text-line Donut ablation on cached backbone features (not a test; issue #14).

Caches the frozen backbone's features once (train forms minus the field reader's 100 held-out
ones, ``--copies`` augmented versions each; the held-out and the validation forms plain), then
trains the ``lines_cpu`` decoder for the same wall-clock budget per variant — the best epoch
(``val_ned``) is chosen on the 100 held-out train forms, never on validation — and reports
validation FLA/CBA:

- ``both``: backbone features + CTC log-probabilities (the default encoder output);
- ``chars``: only the CTC log-probabilities (the backbone feature part zeroed);
- ``dropout``: both, decoder dropout 0.3 (instead of 0.1).

    .venv/bin/python benchmarks/donut/donut_lines_ablation.py --minutes 4 --copies 2

Writes benchmarks/results/donut_lines_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fieldreader-dir", default=str(ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    parser.add_argument("--minutes", type=float, default=4.0, help="training wall clock per variant")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--holdout", type=int, default=100)
    parser.add_argument("--variants", default="both,chars,dropout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=0, help="smoke runs: N train forms")
    parser.add_argument("--limit-val", type=int, default=0, help="smoke runs: N validation forms")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "donut_lines_ablation"))
    args = parser.parse_args()
    import pandas as pd
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from handwriting_pipeline.config import TrainSettings
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.donut import recipe
    from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
    from handwriting_pipeline.donut.feature_cache import freeze_backbone, maybe_cache
    from handwriting_pipeline.donut.inference import generate_fields
    from handwriting_pipeline.donut.training import fit_stage
    from handwriting_pipeline.metrics import aggregate, score_forms

    base = yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())["train"]
    base["model"].update(preset="lines_cpu", encoder="text_lines")
    base["model"]["text_lines"]["fieldreader_dir"] = args.fieldreader_dir
    from handwriting_pipeline.selection import split_for_selection

    selection = split_for_selection(read_donut_folder(SHARED / "train", split="train")[0],
                                    read_donut_folder(SHARED / "validation", split="validation")[0],
                                    args.holdout, args.limit_train, args.limit_val)
    train_forms, holdout_forms, val_forms = selection.fit, selection.choose, selection.report
    tokenizer = recipe.build_tokenizer(train_forms, base)
    cache_started = time.monotonic()
    bundle = recipe.build_model(tokenizer, base)
    train_data = maybe_cache(FormsDataset(train_forms, DonutEncoder(bundle.processor, bundle.preprocessing), train=True),
                             bundle, args.copies, "train", seed=42)
    held_data = maybe_cache(FormsDataset(holdout_forms, DonutEncoder(bundle.processor, bundle.preprocessing)), bundle,
                            1, "holdout")  # chooses the best epoch
    val_data = maybe_cache(FormsDataset(val_forms, DonutEncoder(bundle.processor, bundle.preprocessing)), bundle, 1,
                           "validation")  # only reported
    cache_seconds = time.monotonic() - cache_started
    feature_size = bundle.model.encoder.config.feature_size
    results = {}
    for variant in args.variants.split(","):
        params = copy.deepcopy(base)
        if variant == "dropout":
            params["model"]["presets"]["lines_cpu"]["decoder"]["dropout"] = 0.3
        torch.manual_seed(0)
        fresh = recipe.build_model(tokenizer, params)
        freeze_backbone(fresh.model.encoder)  # the cached features are its output
        data, held, val = train_data, held_data, val_data
        if variant == "chars":
            data, held, val = (BackboneZeroed(d, feature_size) for d in (train_data, held_data, val_data))
        train = TrainSettings.from_params(params)
        stage = train.finetune.__class__(**{**train.finetune.to_dict(), "epochs": 500, "batch_size": 16,
                                            "learning_rate": 7e-4, "warmup_ratio": 0.05,
                                            "max_minutes": args.minutes, "schedule_by_time": True,
                                            "restore_best": True})
        early = train.early_stopping.__class__(**{**train.early_stopping.to_dict(), "patience": 50})
        trainer = train.trainer.__class__(**{**train.trainer.to_dict(), "progress_bar": False, "num_workers": 0,
                                             "val_batch_size": 64})
        started = time.monotonic()
        rows, reason = fit_stage(fresh, data, held, f"ablation_{variant}", stage, trainer, early, seed=42)
        seconds = time.monotonic() - started
        fresh.model.eval()
        preds = []
        for b in range(0, len(val), 64):
            batch = [val[i] for i in range(b, min(b + 64, len(val)))]
            fields, _, _ = generate_fields(fresh.model, fresh.processor, torch.stack([x["pixel_values"] for x in batch]),
                                           max_length=fresh.preprocessing.max_length)
            preds += [{"file_name": x["file_name"], **f} for x, f in zip(batch, fields)]
        agg = aggregate(score_forms(val_forms.labels, pd.DataFrame(preds)))
        results[variant] = {"FLA": round(float(agg["FLA"]), 2), "CBA": round(float(agg["CBA"]), 2),
                            "epochs": len(rows), "train_seconds": round(seconds, 1), "stop": reason,
                            "best_holdout_val_ned": min(r["val_ned"] for r in rows) if rows else None}
        print(variant, results[variant], flush=True)
    out = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": f"{os.cpu_count()}-core CPU, {platform.platform()}, torch threads {args.threads}",
           "train_forms": len(train_forms), "copies": args.copies, "cache_seconds": round(cache_seconds, 1),
           "minutes_per_variant": args.minutes, "holdout_forms": len(holdout_forms),
           "selection": "best epoch (val_ned) chosen on the held-out train forms; validation only reported",
           "validation_forms": len(val_forms), "variants": results}
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    md = [f"# Text-line Donut ablation ({out['date']}, {out['machine'].split(',')[0]})", "",
          f"{len(train_forms)} train forms x {args.copies + 1} cached versions, {args.minutes:g} min of training "
          f"per variant, best epoch chosen on {len(holdout_forms)} held-out train forms, validation "
          f"{len(val_forms)} forms (reported only), greedy.", "",
          "| variant | FLA | CBA | epochs | best held-out val_ned |", "|---|--:|--:|--:|--:|"]
    md += [f"| {k} | {v['FLA']:.1f} | {v['CBA']:.1f} | {v['epochs']} | {v['best_holdout_val_ned']:.4f} |"
           for k, v in results.items()]
    path.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


class BackboneZeroed:
    """A cached dataset whose backbone-feature part is zeroed (only the CTC log-probabilities left)."""

    def __init__(self, data, feature_size: int) -> None:
        self.data, self.feature_size = data, feature_size

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.data[index])
        pixels = item["pixel_values"].clone()
        pixels[..., : self.feature_size] = 0.0
        item["pixel_values"] = pixels
        return item


if __name__ == "__main__":
    sys.exit(main())
