"""Donut benchmark (not a test): train on the real shared crops (+ synthetic pretraining),
report validation FLA / CBA (total and per key), training wall time and inference speed.

Usage (from the repository root; ~1 hour on a 2-core CPU with the defaults)::

    .venv/bin/python benchmarks/donut/donut_benchmark.py --preset small --max-minutes 55
    # the pretrained text-line encoder (field reader backbone) under a small MBart decoder:
    .venv/bin/python benchmarks/donut/donut_benchmark.py --encoder text_lines --max-minutes 30 --synthetic-forms 0

With ``--encoder text_lines`` the preset defaults to ``lines_cpu``, the encoder starts from
``--fieldreader-dir`` (stock recognizer when missing), results go to
benchmarks/results/donut_text_lines_benchmark.*, and the validation forms are also read with
joint decoding (beam + field reader CTC rescoring, ``--joint-weights``).

Honest selection: the last ``--holdout`` (100) train forms are never trained on; the best
checkpoint (early stopping on ``val_ned``), the joint-decoding weight and the vote calibration are
chosen on them (:mod:`handwriting_pipeline.selection`). The validation forms are only reported.

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

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None,
                        help="train.model.presets entry (default small; lines_cpu for --encoder text_lines)")
    parser.add_argument("--encoder", default="donut_swin", choices=["donut_swin", "text_lines"])
    parser.add_argument("--fieldreader-dir", default=str(ROOT.parent / "main" / "data" / "06_models" /
                                                         "benchmark_fieldreader"),
                        help="text_lines: the field reader the encoder starts from (stock recognizer when missing)")
    parser.add_argument("--freeze-steps", type=int, default=None, help="text_lines: encoder frozen for N steps")
    parser.add_argument("--encoder-lr-scale", type=float, default=None, help="text_lines: encoder lr share")
    parser.add_argument("--cache-copies", type=int, default=None,
                        help="text_lines: freeze the backbone and cache its features for the plain lines + N "
                             "augmented versions per form (train.model.text_lines.cache_copies; 0 = backbone trains)")
    parser.add_argument("--joint-beams", type=int, default=4, help="text_lines: beam size of joint decoding (0 = off)")
    parser.add_argument("--joint-weights", default="0,0.3,1,3", help="text_lines: CTC weights of joint decoding")
    parser.add_argument("--schedule-by-time", action="store_true",
                        help="fine-tuning: the cosine learning-rate decay ends with --max-minutes (not the last epoch)")
    parser.add_argument("--tag", default="", help="machine note for the results (e.g. 'H200 GPU')")
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
    parser.add_argument("--holdout", type=int, default=100,
                        help="the last N train forms (the field reader's held-out forms: 100) are left out of "
                             "training; the checkpoint, the joint weight and the Donut's vote calibration (saved "
                             "in the model folder) are chosen on them, never on validation (N >= 1)")
    parser.add_argument("--limit-train", type=int, default=0, help="use only N training forms (smoke runs)")
    parser.add_argument("--limit-val", type=int, default=0, help="use only N validation forms (smoke runs)")
    parser.add_argument("--out", default=None, help="model folder (default data/06_models/benchmark_<preset>)")
    parser.add_argument("--results", default=None,
                        help="results path stem (default benchmarks/results/donut_benchmark, "
                             "donut_text_lines_benchmark for text_lines)")
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
    lines = args.encoder == "text_lines"
    args.preset = args.preset or ("lines_cpu" if lines else "small")
    args.results = args.results or str(ROOT / "benchmarks" / "results" /
                                       ("donut_text_lines_benchmark" if lines else "donut_benchmark"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("donut_benchmark")
    import pandas as pd
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.donut import recipe
    from handwriting_pipeline.donut.inference import DonutPredictor
    from handwriting_pipeline.donut.model import count_parameters
    from handwriting_pipeline.fields import KEYS
    from handwriting_pipeline.metrics import aggregate, score_forms
    from handwriting_pipeline.selection import split_for_selection

    started = dt.datetime.now(dt.timezone.utc)
    params = copy.deepcopy(yaml.safe_load((ROOT / "conf/base/parameters_train.yml").read_text())["train"])
    params["model"]["preset"] = args.preset
    params["model"]["encoder"] = args.encoder
    fieldreader_dir = None
    if lines:
        from handwriting_pipeline.donut.text_lines import resolve_fieldreader_dir

        fieldreader_dir = resolve_fieldreader_dir(args.fieldreader_dir)
        params["model"]["text_lines"]["fieldreader_dir"] = fieldreader_dir
        if args.freeze_steps is not None:
            params["model"]["text_lines"]["freeze_steps"] = args.freeze_steps
        if args.encoder_lr_scale is not None:
            params["model"]["text_lines"]["lr_scale"] = args.encoder_lr_scale
        if args.cache_copies is not None:
            params["model"]["text_lines"]["cache_copies"] = args.cache_copies
    previous = None
    if args.init_from:
        params["model"].update(init="pretrained", pretrained_name_or_path=args.init_from)
        previous_json = Path(args.results).with_suffix(".json")
        if previous_json.is_file():
            previous = json.loads(previous_json.read_text(encoding="utf-8"))
    params["tokenizer"]["synthetic_forms"] = max(2000, args.synthetic_forms)
    if args.ctc_weight is not None:
        params.setdefault("ctc", {})["weight"] = args.ctc_weight
    params["trainer"].update(accelerator="gpu" if torch.cuda.is_available() else "cpu",
                             num_workers=args.num_workers, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
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
                              max_minutes=args.max_minutes - pre_minutes, warmup_ratio=0.05,
                              schedule_by_time=args.schedule_by_time)

    all_train, problems = read_donut_folder(args.train_dir, split="train")
    all_val, _ = read_donut_folder(args.val_dir, split="validation")
    # fit on the train forms, choose on the held-out train forms, report on validation
    selection = split_for_selection(all_train, all_val, args.holdout, args.limit_train, args.limit_val)
    train_forms, holdout, val_forms = selection.fit, selection.choose, selection.report
    log.info("train %d forms (%d problems), held out to choose %d, validation (reported only) %d forms",
             len(train_forms), len(problems), len(holdout), len(val_forms))

    t0 = time.monotonic()
    tokenizer = recipe.build_tokenizer(train_forms, params)
    bundle = recipe.build_model(tokenizer, params)
    if args.init_ckpt:
        state = torch.load(args.init_ckpt, map_location="cpu", weights_only=False)["state_dict"]
        # the Lightning module also holds the training-only CTC head ("ctc.*"): keep the model's weights
        bundle.model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
        log.info("loaded weights from %s", args.init_ckpt)
    n_params = count_parameters(bundle.model)
    t_pre = time.monotonic()
    bundle, pre_hist = recipe.pretrain_on_synthetic(bundle, holdout, params)
    pre_seconds = time.monotonic() - t_pre
    t_ft = time.monotonic()
    bundle, ft_hist = recipe.fine_tune(bundle, train_forms, holdout, params)
    ft_seconds = time.monotonic() - t_ft
    train_seconds = time.monotonic() - t0
    history, figure = recipe.training_report(pre_hist, ft_hist)

    out = Path(args.out or ROOT / "data" / "06_models" / f"benchmark_{args.preset}")
    bundle.save(out)
    log.info("saved model to %s", out)

    # ---- validation metrics and CPU inference speed (the saved model, greedy)
    names = val_forms.labels["file_name"].tolist()
    images = [val_forms.images[n] for n in names]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    predictor = DonutPredictor(bundle, batch_size=args.infer_batch_size, num_beams=1, device=device)
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

    calibration = fit_vote_calibration(bundle, holdout, out, args)
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    result = {
        "benchmark": Path(args.results).name,
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu_name,
                    "note": args.tag or ("2-core CPU shared with other developers' jobs during part of the run"
                                         if not gpu_name else "")},
        "data": {"train": os.path.relpath(args.train_dir, ROOT), "validation": os.path.relpath(args.val_dir, ROOT),
                 "n_train": len(train_forms),
                 "n_validation": len(val_forms), "synthetic_pretraining_forms": args.synthetic_forms,
                 "n_holdout": len(holdout),
                 "selection": "checkpoint (val_ned), joint weight and vote calibration chosen on the held-out train "
                              "forms; validation only reported"},
        "model": {"preset": args.preset, "encoder": args.encoder, "fieldreader_dir": fieldreader_dir,
                  "parameters": n_params, "init": params["model"]["init"],
                  "image_size": bundle.preprocessing.image_size, "roi": bundle.preprocessing.roi,
                  "vocab": len(bundle.processor.tokenizer), "saved_to": os.path.relpath(out, ROOT)},
        "settings": {**{k: params.get(k) for k in ("pretrain", "finetune", "early_stopping", "augment", "ctc")},
                     "text_lines": params["model"].get("text_lines") if lines else None},
        "training": {"wall_seconds": round(train_seconds, 1), "pretrain_seconds": round(pre_seconds, 1),
                     "finetune_seconds": round(ft_seconds, 1),
                     "stop_reasons": [r for r in history["stop_reason"].tolist() if isinstance(r, str) and r]},
        "validation": {**{k: (round(float(v), 2) if isinstance(v, float) else v) for k, v in metrics.items()},
                       **{k: round(v, 2) for k, v in exact_per_key.items()}},
        f"inference_{'gpu' if gpu_name else 'cpu'}": {
            "forms": len(images), "seconds": round(infer_seconds, 2),
            "forms_per_second": round(len(images) / infer_seconds, 2),
            "batch_size": args.infer_batch_size, "num_beams": 1, "threads": torch.get_num_threads()},
        **({"inference_gpu": "not measured: no GPU lent to this task"} if not gpu_name else {}),
        "joint_decoding": None,
        "vote_calibration": calibration,
        "init_from": os.path.relpath(args.init_from, ROOT) if args.init_from else None,
        "init_ckpt": os.path.relpath(args.init_ckpt, ROOT) if args.init_ckpt else None,
        "previous_phase": previous,
        "total_training_wall_seconds": round(train_seconds + (previous or {}).get("total_training_wall_seconds",
                                             (previous or {}).get("training", {}).get("wall_seconds", 0.0)), 1),
        "targets": ({"FLA": 54.0, "CBA": 95.3, "cpu_forms_per_second": 10.0, "cpu_training_minutes": 45} if lines
                    else {"FLA": 54.0, "CBA": 95.0, "cpu_forms_per_second": 2.0}),
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
        f"# Donut benchmark ({result['date_utc']} UTC, {result['machine']['cpu_count']}-core CPU, "
        f"{gpu_name or 'no GPU'})",
        "",
        (f"Model: preset `{args.preset}`, {n_params / 1e6:.2f}M parameters, from_config (no pretrained weights), "
         f"input {bundle.preprocessing.image_size[0]}x{bundle.preprocessing.image_size[1]} from ROI "
         f"{bundle.preprocessing.roi}; " if not lines else
         f"Model: text-line encoder (PP-OCRv6 backbone from "
         f"{os.path.relpath(fieldreader_dir, ROOT) if fieldreader_dir else 'the stock rapidocr recognizer'}) + "
         f"MBart decoder preset `{args.preset}`, {n_params / 1e6:.2f}M parameters, lines "
         f"{bundle.preprocessing.line_widths} px wide at height 48; ")
        + f"{args.synthetic_forms} synthetic forms pretraining, {len(train_forms)} real "
        f"training forms; auxiliary CTC weight {params.get('ctc', {}).get('weight', 0) if not lines else 0}.",
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
        f"Inference ({'GPU' if gpu_name else f'CPU, {torch.get_num_threads()} threads'}, batch "
        f"{args.infer_batch_size}, greedy): {len(images) / infer_seconds:.2f} forms/s."
        + ("" if gpu_name else " GPU: not measured (none lent)."),
    ]
    results.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    log.info("\n%s", "\n".join(md))
    # joint decoding last (slowest): the results above are already on disk if it is cut short
    joint = evaluate_joint(args, bundle, fieldreader_dir, names, images, val_forms.labels, holdout) if lines else None
    if joint:
        result["joint_decoding"] = joint
        results.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        md += ["", f"Joint decoding (beam {joint['num_beams']} rescored with the field reader's CTC score; "
               f"{joint['forms_per_second']:.2f} forms/s; weight chosen on the {len(holdout)} held-out train "
               f"forms: {joint['chosen']}):", "",
               "| decoding | FLA | CBA | CBA DATE | CBA CITY | CBA STATE | CBA ZIP |", "|---|---|---|---|---|---|---|"]
        md += [f"| {name} | {r['FLA']:.1f} | {r['CBA']:.1f} | {r['CBA_DATE']:.1f} | {r['CBA_CITY']:.1f} | "
               f"{r['CBA_STATE']:.1f} | {r['CBA_ZIP']:.1f} |" for name, r in joint["variants"].items()]
        results.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
        log.info("\n%s", "\n".join(md[-len(joint["variants"]) - 4:]))
    return 0


def fit_vote_calibration(bundle, holdout, out: Path, args) -> dict:
    """Read the held-out train forms (never trained on) and fit the Donut's vote calibration
    (``ensemble.vote`` format), saved next to the model where ``DonutEngine.vote_calibration`` finds it."""
    import pandas as pd

    from handwriting_pipeline.donut.inference import DonutPredictor
    from handwriting_pipeline.donut.model import save_vote_calibration
    from handwriting_pipeline.fields import KEYS
    from handwriting_pipeline.training.calibration import fit_calibration

    names = holdout.labels["file_name"].tolist()
    predictor = DonutPredictor(bundle, batch_size=args.infer_batch_size, num_beams=1, device="cpu")
    rows = [{"file_name": n, **p.fields, **{f"{k}_conf": p.confidence[k] for k in KEYS}}
            for n, p in zip(names, predictor.predict([holdout.images[n] for n in names]))]
    calibration = fit_calibration(holdout.labels, {"donut": pd.DataFrame(rows)}).get("donut", {})
    save_vote_calibration(out, calibration, f"{len(names)} held-out train forms")
    return calibration


def evaluate_joint(args, bundle, fieldreader_dir, names, images, labels, holdout) -> dict | None:
    """Validation read with beam search rescored by the field reader's CTC score, per weight; the
    weight is chosen on the held-out train forms (best FLA, then CBA), all are reported."""
    if args.joint_beams <= 0:
        return None
    import pandas as pd

    from handwriting_pipeline.donut.joint import JointPredictor
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.metrics import aggregate, score_forms

    reader = FieldReader.load(fieldreader_dir, threads=args.threads) if fieldreader_dir else FieldReader.stock()
    weights = [float(w) for w in args.joint_weights.split(",") if w.strip()]
    predictor = JointPredictor(bundle, reader, num_beams=args.joint_beams, weights=weights,
                               batch_size=args.infer_batch_size)
    def scores(forms_names, forms_images, forms_labels) -> dict:
        out = {}
        for weight, fields in predictor.predict(forms_images).items():
            table = pd.DataFrame([{"file_name": n, **f} for n, f in zip(forms_names, fields)])
            agg = aggregate(score_forms(forms_labels, table))
            name = f"beam {args.joint_beams}" + (f" + CTC x{weight:g}" if weight else " (decoder only)")
            out[name] = {k: round(float(v), 2) for k, v in agg.items() if isinstance(v, (int, float))}
        return out

    held_names = holdout.labels["file_name"].tolist()
    on_holdout = scores(held_names, [holdout.images[n] for n in held_names], holdout.labels)
    chosen = max(on_holdout, key=lambda name: (on_holdout[name]["FLA"], on_holdout[name]["CBA"]))
    started = time.perf_counter()
    variants = scores(names, images, labels)
    seconds = time.perf_counter() - started
    return {"num_beams": args.joint_beams, "weights": weights, "fieldreader": fieldreader_dir or "stock",
            "seconds": round(seconds, 2), "forms_per_second": round(len(images) / seconds, 2), "variants": variants,
            "chosen": chosen, "holdout_variants": on_holdout}


if __name__ == "__main__":
    sys.exit(main())
