"""Donut benchmark (not a test): train on the real shared crops (+ synthetic pretraining),
report validation FLA / CBA (total and per key), training wall time and inference speed.

Usage (from the repository root; ~1 hour on a 2-core CPU with the defaults)::

    .venv/bin/python benchmarks/donut_benchmark.py --preset small --max-minutes 55

Reads ../shared/data/hsf_top/{train,validation}; uses the ``train`` parameters of
conf/base/parameters_train.yml with the overrides given here. Writes
benchmarks/results/donut_benchmark.{json,md} + the per-epoch history (CSV), and saves the model
(save_pretrained folder) to data/06_models/benchmark_<preset>/, which the evaluate pipeline
can use: ``kedro run --pipeline evaluate --params=train.model_dir=data/06_models/benchmark_small``.
Checkpoints go to data/06_models/benchmark_checkpoints/ (``--resume`` continues from them).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", help="train.model.presets entry (tiny/small/base)")
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--max-minutes", type=float, default=55.0, help="wall-clock cap for both training stages")
    parser.add_argument("--pretrain-share", type=float, default=0.3, help="share of --max-minutes for pretraining")
    parser.add_argument("--synthetic-forms", type=int, default=3000, help="synthetic forms for pretraining (0 = none)")
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument("--finetune-epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-lr", type=float, default=7e-4)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--ctc-weight", type=float, default=None,
                        help="auxiliary CTC loss weight (default: train.ctc.weight of the parameters; 0 = off)")
    parser.add_argument("--pretrain-val-forms", type=int, default=64, help="validation forms during pretraining")
    parser.add_argument("--pretrain-val-every", type=int, default=60, help="validate every N pretraining steps")
    parser.add_argument("--pretrain-patience", type=int, default=10, help="validations without improvement")
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (render synthetic forms)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--infer-batch-size", type=int, default=16)
    parser.add_argument("--limit-train", type=int, default=0, help="use only N training forms (smoke runs)")
    parser.add_argument("--out", default=None, help="model folder (default data/06_models/benchmark_<preset>)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "donut_benchmark"))
    parser.add_argument("--checkpoint-dir", default=str(ROOT / "data" / "06_models" / "benchmark_checkpoints"))
    parser.add_argument("--resume", action="store_true", help="continue each stage from its last.ckpt")
    parser.add_argument("--init-from", default=None,
                        help="start from a saved model folder (train.model.init=pretrained), e.g. to continue "
                             "fine-tuning an earlier run's model; its results JSON is kept as 'previous_phase'")
    parser.add_argument("--init-ckpt", default=None,
                        help="with --init-from: load the model weights of this Lightning checkpoint (e.g. the "
                             "earlier run's finetune/last.ckpt instead of its best-val_ned weights)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("donut_benchmark")
    import pandas as pd
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.donut.inference import DonutPredictor
    from handwriting_pipeline.donut.model import count_parameters
    from handwriting_pipeline.fields import KEYS
    from handwriting_pipeline.metrics import aggregate, score_forms
    from handwriting_pipeline.pipelines.train import nodes

    started = dt.datetime.now(dt.timezone.utc)
    params = copy.deepcopy(yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())["train"])
    params["model"]["preset"] = args.preset
    previous = None
    if args.init_from:
        params["model"].update(init="pretrained", pretrained_name_or_path=args.init_from)
        previous_json = Path(args.results).with_suffix(".json")
        if previous_json.is_file():
            previous = json.loads(previous_json.read_text(encoding="utf-8"))
    params["tokenizer"]["synthetic_forms"] = max(2000, args.synthetic_forms)
    if args.ctc_weight is not None:
        params.setdefault("ctc", {})["weight"] = args.ctc_weight
    params["trainer"].update(num_workers=args.num_workers, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                             val_batch_size=32, progress_bar=True, log_every_n_steps=20)
    params["early_stopping"].update(patience=args.patience)
    pre_minutes = args.max_minutes * args.pretrain_share if args.synthetic_forms > 0 else 0.0
    params["pretrain"].update(enabled=args.synthetic_forms > 0, num_forms=args.synthetic_forms,
                              epochs=args.pretrain_epochs, batch_size=args.batch_size, learning_rate=args.pretrain_lr,
                              max_minutes=pre_minutes or None, val_max_forms=args.pretrain_val_forms,
                              patience=args.pretrain_patience, restore_best=False,
                              val_check_interval=min(args.pretrain_val_every,
                                                     max(1, args.synthetic_forms // args.batch_size)))
    params["finetune"].update(epochs=args.finetune_epochs, batch_size=args.batch_size, learning_rate=args.finetune_lr,
                              max_minutes=args.max_minutes - pre_minutes, warmup_ratio=0.05)

    train_forms, problems = read_donut_folder(args.train_dir, split="train")
    val_forms, _ = read_donut_folder(args.val_dir, split="validation")
    if args.limit_train:
        train_forms = train_forms.subset(train_forms.labels["file_name"].tolist()[: args.limit_train])
    log.info("train %d forms (%d problems), validation %d forms", len(train_forms), len(problems), len(val_forms))

    t0 = time.monotonic()
    tokenizer = nodes.build_tokenizer(train_forms, params)
    bundle = nodes.build_model(tokenizer, params)
    if args.init_ckpt:
        state = torch.load(args.init_ckpt, map_location="cpu", weights_only=False)["state_dict"]
        # the Lightning module also holds the training-only CTC head ("ctc.*"): keep the model's weights
        bundle.model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
        log.info("loaded weights from %s", args.init_ckpt)
    n_params = count_parameters(bundle.model)
    t_pre = time.monotonic()
    bundle, pre_hist = nodes.pretrain_on_synthetic(bundle, val_forms, params)
    pre_seconds = time.monotonic() - t_pre
    t_ft = time.monotonic()
    bundle, ft_hist = nodes.fine_tune(bundle, train_forms, val_forms, params)
    ft_seconds = time.monotonic() - t_ft
    train_seconds = time.monotonic() - t0
    history, figure = nodes.training_report(pre_hist, ft_hist)

    out = Path(args.out or ROOT / "data" / "06_models" / f"benchmark_{args.preset}")
    bundle.save(out)
    log.info("saved model to %s", out)

    # ---- validation metrics and CPU inference speed (the saved model, greedy)
    names = val_forms.labels["file_name"].tolist()
    images = [val_forms.images[n] for n in names]
    predictor = DonutPredictor(bundle, batch_size=args.infer_batch_size, num_beams=1, device="cpu")
    predictor.predict(images[: args.infer_batch_size])  # warm-up
    t_inf = time.perf_counter()
    predictions = predictor.predict(images)
    infer_seconds = time.perf_counter() - t_inf
    table = pd.DataFrame([{"file_name": n, **p.fields} for n, p in zip(names, predictions)])
    per_form = score_forms(val_forms.labels, table)
    metrics = aggregate(per_form)
    gold = val_forms.labels.set_index("file_name")
    exact_per_key = {f"exact_{k}": float(100.0 * (table.set_index("file_name")[k] == gold.loc[names, k]).mean())
                     for k in KEYS}

    result = {
        "benchmark": "donut_benchmark",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": None,
                    "note": "2-core CPU shared with other developers' jobs during part of the run"},
        "data": {"train": os.path.relpath(args.train_dir, ROOT), "validation": os.path.relpath(args.val_dir, ROOT),
                 "n_train": len(train_forms),
                 "n_validation": len(val_forms), "synthetic_pretraining_forms": args.synthetic_forms},
        "model": {"preset": args.preset, "parameters": n_params, "init": params["model"]["init"],
                  "image_size": bundle.preprocessing.image_size, "roi": bundle.preprocessing.roi,
                  "vocab": len(bundle.processor.tokenizer), "saved_to": os.path.relpath(out, ROOT)},
        "settings": {k: params.get(k) for k in ("pretrain", "finetune", "early_stopping", "augment", "ctc")},
        "training": {"wall_seconds": round(train_seconds, 1), "pretrain_seconds": round(pre_seconds, 1),
                     "finetune_seconds": round(ft_seconds, 1),
                     "stop_reasons": [r for r in history["stop_reason"].tolist() if isinstance(r, str) and r]},
        "validation": {**{k: (round(float(v), 2) if isinstance(v, float) else v) for k, v in metrics.items()},
                       **{k: round(v, 2) for k, v in exact_per_key.items()}},
        "inference_cpu": {"forms": len(images), "seconds": round(infer_seconds, 2),
                          "forms_per_second": round(len(images) / infer_seconds, 2),
                          "batch_size": args.infer_batch_size, "num_beams": 1, "threads": torch.get_num_threads()},
        "inference_gpu": "not measured: no GPU lent to this task",
        "init_from": os.path.relpath(args.init_from, ROOT) if args.init_from else None,
        "init_ckpt": os.path.relpath(args.init_ckpt, ROOT) if args.init_ckpt else None,
        "previous_phase": previous,
        "total_training_wall_seconds": round(train_seconds + (previous or {}).get("total_training_wall_seconds",
                                             (previous or {}).get("training", {}).get("wall_seconds", 0.0)), 1),
        "targets": {"FLA": 54.0, "CBA": 95.0, "cpu_forms_per_second": 2.0},
    }
    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    history.to_csv(results.with_name(results.name + "_history.csv"), index=False)
    figure.savefig(results.with_name(results.name + "_history.png"), dpi=90)
    errors = table.assign(**{f"gold_{k}": gold.loc[names, k].tolist() for k in KEYS})
    errors[per_form["exact"].values == 0].head(40).to_csv(results.with_name(results.name + "_errors_sample.csv"),
                                                          index=False)
    v = result["validation"]
    md = [
        f"# Donut benchmark ({result['date_utc']} UTC, {result['machine']['cpu_count']}-core CPU, no GPU)",
        "",
        f"Model: preset `{args.preset}`, {n_params / 1e6:.2f}M parameters, from_config (no pretrained weights), "
        f"input {bundle.preprocessing.image_size[0]}x{bundle.preprocessing.image_size[1]} from ROI "
        f"{bundle.preprocessing.roi}; {args.synthetic_forms} synthetic forms pretraining, {len(train_forms)} real "
        f"training forms; auxiliary CTC weight {params.get('ctc', {}).get('weight', 0)}.",
        "",
        "| validation (n=%d) | FLA | CBA | CBA DATE | CBA CITY | CBA STATE | CBA ZIP | coverage |" % v["n"],
        "|---|---|---|---|---|---|---|---|",
        f"| Donut {args.preset} | {v['FLA']:.1f} | {v['CBA']:.1f} | {v['CBA_DATE']:.1f} | {v['CBA_CITY']:.1f} | "
        f"{v['CBA_STATE']:.1f} | {v['CBA_ZIP']:.1f} | {v['coverage']:.1f} |",
        "",
        "Exact per key: " + ", ".join(f"{k} {v['exact_' + k]:.1f}%" for k in KEYS),
        "",
        f"Training wall time: {train_seconds / 60:.1f} min (pretrain {pre_seconds / 60:.1f}, fine-tune "
        f"{ft_seconds / 60:.1f}); stop: {'; '.join(result['training']['stop_reasons'])}"
        + (f"; continued from {result['init_from']} (total training "
           f"{result['total_training_wall_seconds'] / 60:.1f} min)" if args.init_from else ""),
        "",
        f"Inference (CPU, {torch.get_num_threads()} threads, batch {args.infer_batch_size}, greedy): "
        f"{result['inference_cpu']['forms_per_second']:.2f} forms/s. GPU: not measured (none lent).",
    ]
    results.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    log.info("\n%s", "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
