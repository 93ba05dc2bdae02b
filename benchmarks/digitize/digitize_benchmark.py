"""Digitize benchmark (not a test): throughput, memory, accuracy and a profile of `digitize`.

One command (from the repository root)::

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/digitize/digitize_benchmark.py --pages 1000 \\
        --model data/06_models/benchmark_fieldreader

writes ``benchmarks/results/digitize_benchmark.json`` (with ``date`` and ``machine``) and prints
a summary. What it measures:

* **speed** (``--pages N`` synthetic full HSF pages from ``digitize.demo``, seed 5, made once
  and kept under ``--work``): each mode in its own Python process with an empty engine cache,
  wall time, forms/s, CPU seconds of every process (so a loaded machine can be told apart) and
  the peak RSS of every process (main, pool / Dask workers, Dask scheduler), sampled with psutil:
  ``vote`` (the full offline vote: field reader + RapidOCR, on ``--vote-pages``), ``fieldreader``
  (alone), ``cascade`` (:mod:`handwriting_pipeline.ensemble.cascade`), ``cascade`` at a small N
  (is the main process's memory flat in N?), ``dask_local`` (a 2-worker ``LocalCluster``),
  ``dask_scheduler`` (``dask scheduler`` + ``--workers`` ``dask worker`` processes on 127.0.0.1,
  started and torn down here; its records are compared with the local pool's, byte for byte),
  and ``crops`` (the field reader on the shared validation crops: no page registration);
* **accuracy** on the shared validation crops (``../shared/data/hsf_top/validation``): FLA / CBA
  of the field reader, RapidOCR, the vote and the cascade, through the same calibrated vote as
  digitize;
* **the cascade's threshold**, chosen on the 100 held-out train forms (the last 100 of the
  shared train split): FLA and share of forms escalated per threshold, on held-out train and on
  validation, with the throughput each would have (from the measured CPU seconds per form);
* **a profile** (cProfile, ``--profile-pages`` pages read in one process with the cascade):
  where a page's time goes, stage by stage.

Readings of the shared crops are cached under ``--work`` (a re-run reads nothing twice).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"
RESULTS = ROOT / "benchmarks" / "results"
THRESHOLDS = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.01]


def machine() -> dict[str, Any]:
    import psutil

    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count(),
                        "python": platform.python_version(), "gpu": None,
                        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
                        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}}


def conf(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((ROOT / "conf" / "base" / f"parameters_{name}.yml").read_text())[name]


# --------------------------------------------------------------------------- one mode (child process)
#: a saved field reader ensemble (--ensemble): then the default engines are those digitize uses
#: once it is trained (it supersedes the single field reader)
ENSEMBLE = os.environ.get("DIGITIZE_BENCHMARK_ENSEMBLE", "")


def make_plan_for(method: str, model: str, cache: Path | None, workers: int, dask: dict[str, Any] | None = None,
                  cascade: dict[str, Any] | None = None):
    """The digitize plan ``kedro run --pipeline digitize`` builds from conf/base, for ``method``."""
    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.datasets.model import FieldReaderRef
    from handwriting_pipeline.digitize.core import make_plan

    params, ensemble = conf("digitize"), conf("ensemble")
    params.update(method=method, progress=False, workers=workers, dask=dask or {})
    if cascade:
        ensemble["cascade"] = {**ensemble.get("cascade", {}), **cascade}
    return make_plan(params, conf("extract"), ensemble, {}, ResponseCache(cache) if cache else None,
                     datasets={"fieldreader_model": FieldReaderRef.from_path(model),
                               **({"fieldreader_ensemble_model": FieldReaderRef.from_path(ENSEMBLE)} if ENSEMBLE else {})})


def run_mode(spec: dict[str, Any]) -> dict[str, Any]:
    """In a child process: digitize ``spec['inputs']`` once; records go to ``spec['out']`` (JSON lines)."""
    from handwriting_pipeline.datasets.digitize import ImageInputs
    from handwriting_pipeline.digitize.core import digitize_records

    plan = make_plan_for(spec["method"], spec["model"], Path(spec["cache"]), spec["workers"], spec.get("dask"),
                         spec.get("cascade"))
    paths = [line for line in Path(spec["inputs"]).read_text().splitlines() if line]
    started = time.perf_counter()
    n = 0
    with open(spec["out"], "w", encoding="utf-8") as out:
        for record in digitize_records(plan, ImageInputs(paths), review_crops=True):
            record.pop("_files", None)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return {"forms": n, "seconds": time.perf_counter() - started}


class Monitor:
    """Peak RSS and CPU seconds of a process tree (plus extra pids), sampled every ``interval`` s."""

    def __init__(self, roots: list[int], interval: float = 0.2) -> None:
        self.roots, self.interval = roots, interval
        self.peak: dict[int, int] = {}
        self.cpu: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _procs(self):
        import psutil

        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                yield root
                yield from root.children(recursive=True)
            except psutil.Error:
                continue

    def sample(self) -> None:
        import psutil

        for proc in self._procs():
            try:
                with proc.oneshot():
                    rss, times = proc.memory_info().rss, proc.cpu_times()
                    self.names.setdefault(proc.pid, " ".join(proc.cmdline()[1:4])[:80])
            except psutil.Error:
                continue
            self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
            self.cpu[proc.pid] = max(self.cpu.get(proc.pid, 0.0), times.user + times.system)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "Monitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _mb(value: int) -> float:
    return round(value / 2**20, 1)


def measure(name: str, spec: dict[str, Any], work: Path, extra: list[int] | None = None) -> dict[str, Any]:
    """Run one mode in a fresh Python process with an empty cache; forms/s, CPU, peak RSS per process."""
    cache = work / f"cache_{name}"
    shutil.rmtree(cache, ignore_errors=True)
    spec = {**spec, "cache": str(cache), "out": str(work / f"records_{name}.jsonl")}
    spec_file = work / f"spec_{name}.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "_mode", str(spec_file)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with Monitor([proc.pid, *(extra or [])]) as monitor:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"mode {name} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    forms = result["forms"]
    cpu = sum(monitor.cpu.values())
    main_pid = proc.pid
    others = {pid: rss for pid, rss in monitor.peak.items() if pid != main_pid}
    out = {"forms": forms, "wall_s": round(wall, 1), "digitize_s": round(result["seconds"], 1),
           "forms_per_s": round(forms / result["seconds"], 2), "cpu_s": round(cpu, 1),
           "cpu_s_per_form": round(cpu / forms, 4) if forms else None,
           "peak_rss_mb": {"main": _mb(monitor.peak.get(main_pid, 0)),
                           "others": {f"{pid} {monitor.names.get(pid, '')}": _mb(v) for pid, v in sorted(others.items())}}}
    print(f"  {name}: {forms} forms in {result['seconds']:.1f} s = {out['forms_per_s']} forms/s; "
          f"{out['cpu_s_per_form']} CPU s/form; main peak {out['peak_rss_mb']['main']} MB", flush=True)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SeparateCluster:
    """``dask scheduler`` + ``n`` ``dask worker`` processes on 127.0.0.1 (each its own process
    group), torn down on exit."""

    def __init__(self, n: int, timeout: float = 60.0) -> None:
        self.n, self.timeout, self.procs = n, timeout, []
        self.address = f"tcp://127.0.0.1:{free_port()}"

    def __enter__(self) -> "SeparateCluster":
        dask = str(Path(sys.executable).parent / "dask")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
        port = self.address.rsplit(":", 1)[1]
        self.procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", port,
                                            "--dashboard-address", ":0", "--no-show"], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                                                "--host", "127.0.0.1", "--dashboard-address", ":0",
                                                "--memory-limit", "0"], env=env, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(self.address, timeout=f"{int(self.timeout)}s") as client:
            client.wait_for_workers(self.n, timeout=self.timeout)
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def __exit__(self, *exc: Any) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, 15)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def same_records(a: Path, b: Path) -> bool:
    """Records equal byte for byte apart from the measured ``seconds``."""
    def load(path: Path) -> list[str]:
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            record.pop("seconds", None)
            rows.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
        return rows

    return load(a) == load(b)


# --------------------------------------------------------------------------- inputs
def synthetic_pages(work: Path, n: int, seed: int = 5) -> list[str]:
    from handwriting_pipeline.digitize.demo import write_demo

    folder = work / f"pages_seed{seed}"
    have = sorted(folder.glob("page*.png")) if folder.is_dir() else []
    if len(have) < n:
        print(f"writing {n} synthetic pages to {folder} (once) ...", flush=True)
        write_demo(folder, n, seed, pages=True, workers=2)
        have = sorted(folder.glob("page*.png"))
    return [str(p) for p in have[:n]]


def write_list(work: Path, name: str, paths: list[str]) -> str:
    path = work / f"inputs_{name}.txt"
    path.write_text("\n".join(paths) + "\n")
    return str(path)


# --------------------------------------------------------------------------- accuracy + cascade
def readings(split: str, names_slice: slice, model: str, cache: Path) -> tuple[Any, dict[str, Any]]:
    """Labels and every engine's full readings (field reader, RapidOCR) of shared crops, cached."""
    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.engines.runner import run_engine

    forms, _ = read_donut_folder(SHARED / split)
    names = forms.labels["file_name"].tolist()[names_slice]
    plan = make_plan_for("vote", model, cache, 1)
    tables = {method: run_engine(engine, names, forms.images, cache=ResponseCache(cache), workers=2, progress=True)
              for method, engine in plan.engines().items()}
    labels = forms.labels[forms.labels["file_name"].isin(names)].reset_index(drop=True)
    return labels, {"tables": tables, "vote": plan.vote, "fast": [m for m, e in plan.engines().items() if e.fast]}


def fla(labels: Any, predictions: Any) -> dict[str, float]:
    from handwriting_pipeline.metrics import aggregate, score_forms

    scores = aggregate(score_forms(labels, predictions))
    return {"n": scores["n"], "FLA": round(scores["FLA"], 2), "CBA": round(scores["CBA"], 2)}


def method_scores(labels: Any, data: dict[str, Any], cascade: dict[str, Any]) -> dict[str, dict[str, float]]:
    from handwriting_pipeline.ensemble.cascade import cascade_vote
    from handwriting_pipeline.ensemble.vote import vote

    tables, params = data["tables"], data["vote"]
    out = {m: fla(labels, vote({m: t}, params)[0]) for m, t in tables.items()}
    out["vote"] = fla(labels, vote(tables, params)[0])
    merged, share = cascade_vote(tables, data["fast"], params, cascade)
    out["cascade"] = {**fla(labels, merged), "escalated_share": round(share, 3), **cascade}
    return out


def curve(labels: Any, data: dict[str, Any]) -> list[dict[str, Any]]:
    from handwriting_pipeline.ensemble.cascade import cascade_vote

    rows = []
    for escalate_invalid in (True, False):
        for threshold in THRESHOLDS:
            settings = {"threshold": threshold, "escalate_invalid": escalate_invalid}
            merged, share = cascade_vote(data["tables"], data["fast"], data["vote"], settings)
            rows.append({**settings, **fla(labels, merged), "escalated_share": round(share, 3)})
    return rows


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The best point: the highest held-out FLA; among equals, the fewest forms escalated."""
    return max(rows, key=lambda r: (r["FLA"], -r["escalated_share"]))


# --------------------------------------------------------------------------- profile
STAGES = [  # (label, file suffix, function): cumulative time of each (nested rows are indented)
    ("open + decode the file (PIL)", "PIL/ImageFile.py", "load"),
    ("page registration (deskew + box row)", "registration.py|crop.py", "register_page"),
    ("  of which: skew estimate", "registration.py|crop.py", "estimate_skew"),
    ("  of which: rotating the band (OpenCV)", "registration.py", "deskewed_rows"),
    ("crop + threshold (incl. registration)", "registration.py|crop.py", "crop_top_section"),
    ("ink checks", "ink.py|select_forms/nodes.py", "ink_problem"),
    ("field reader: whole read_batch", "engines/fieldreader.py", "read_batch"),
    ("  line cutting (incl. box finding)", "lines.py", "cut_lines"),
    ("  box finding (all callers)", "boxes.py|layout.py", "find_boxes"),
    ("  recognizer (ONNX Runtime)", "fieldreader/model.py", "log_probs"),
    ("  CTC beam search", "decode.py", "beam_search"),
    ("  lexicon re-ranking", "lexicon.py", "rerank"),
    ("RapidOCR (escalated forms)", "rapidocr_engine.py|layout.py", "read"),
    ("cascade decision (vote of the fast reader)", "cascade.py", "escalated"),
    ("vote (all calls)", "ensemble/vote.py", "vote"),
    ("normalization", "fields/normalize.py", "normalize_record"),
    ("review crops (PNG)", "digitize/core.py", "field_crops"),
    ("writing forms.jsonl (json)", "json/__init__.py", "dumps"),
]


def profile(paths: list[str], model: str, work: Path) -> dict[str, Any]:
    """cProfile of the cascade reading ``paths`` in this process (one worker), per stage."""
    from handwriting_pipeline.datasets.digitize import ImageInputs
    from handwriting_pipeline.digitize.core import digitize_records

    cache = work / "cache_profile"
    shutil.rmtree(cache, ignore_errors=True)
    plan = make_plan_for("cascade", model, cache, 1)
    plan.engines()
    for engine in plan.engines().values():  # models loaded before the clock starts
        engine.check_ready()
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    with open(work / "records_profile.jsonl", "w", encoding="utf-8") as out:
        for record in digitize_records(plan, ImageInputs(paths)):
            record.pop("_files", None)
            out.write(json.dumps(record) + "\n")
    prof.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(prof).stats
    rows = []
    for label, files, func in STAGES:
        seconds = sum(v[3] for (file, _, name), v in stats.items()
                      if name == func and any(file.endswith(f) for f in files.split("|")))
        rows.append({"stage": label, "ms_per_page": round(1000 * seconds / len(paths), 1),
                     "share": round(seconds / total, 3)})
    return {"pages": len(paths), "method": "cascade", "seconds": round(total, 2),
            "ms_per_page": round(1000 * total / len(paths), 1), "stages": rows}


# --------------------------------------------------------------------------- report
def estimate_curve_speed(result: dict[str, Any]) -> None:
    """Pages/s each cascade point would reach with every core its own: ``cores / (CPU s per page of
    the field reader alone + escalated share x the extra CPU s per page of the full vote)``, from
    the measured ``fieldreader`` and ``vote`` modes (CPU seconds do not depend on other load)."""
    modes, cascade = result.get("modes") or {}, result.get("cascade")
    if not cascade or "fieldreader" not in modes or "vote" not in modes:
        return
    fast, full = modes["fieldreader"]["cpu_s_per_form"], modes["vote"]["cpu_s_per_form"]
    cores = result["workers"]
    for row in cascade["validation_curve"]:
        row["estimated_pages_per_s_idle"] = round(cores / (fast + row["escalated_share"] * max(0.0, full - fast)), 2)


def markdown(result: dict[str, Any]) -> str:
    """The results as markdown tables (``digitize_benchmark.md``, for the README)."""
    lines = [f"# Digitize benchmark ({result['date']}, {result['machine']['cpu_count']} CPUs)", "",
             f"Note: {result.get('note') or '-'}", ""]
    if result.get("modes"):
        lines += ["| mode | method | forms | forms/s | CPU s / form | peak RSS main (MB) | peak RSS others (MB) |",
                  "|---|---|--:|--:|--:|--:|---|"]
        for name, row in result["modes"].items():
            others = ", ".join(f"{v:.0f}" for v in row["peak_rss_mb"]["others"].values() if v > 50)
            lines.append(f"| {name} | {row['method']} | {row['forms']} | {row['forms_per_s']} | {row['cpu_s_per_form']} "
                         f"| {row['peak_rss_mb']['main']:.0f} | {others} |")
        lines.append("")
    if result.get("accuracy_validation"):
        lines += ["| method (199 validation crops) | FLA | CBA |", "|---|--:|--:|"]
        lines += [f"| {m} | {r['FLA']} | {r['CBA']} |" for m, r in result["accuracy_validation"].items()]
        lines.append("")
    cascade = result.get("cascade")
    if cascade:
        val = {(r["escalate_invalid"], r["threshold"]): r for r in cascade["validation_curve"]}
        lines += ["| escalate invalid | threshold | held-out FLA | held-out escalated | validation FLA | "
                  "validation escalated | est. pages/s, idle 2 cores |", "|---|--:|--:|--:|--:|--:|--:|"]
        for r in cascade["heldout_train_curve"]:
            v = val[(r["escalate_invalid"], r["threshold"])]
            lines.append(f"| {r['escalate_invalid']} | {r['threshold']} | {r['FLA']} | {r['escalated_share']:.0%} "
                         f"| {v['FLA']} | {v['escalated_share']:.0%} | {v.get('estimated_pages_per_s_idle', '-')} |")
        lines.append("")
    if result.get("profile"):
        prof = result["profile"]
        lines += [f"Profile: {prof['pages']} pages, {prof['method']}, one process, {prof['ms_per_page']} ms/page", "",
                  "| stage | ms / page | share |", "|---|--:|--:|"]
        lines += [f"| {r['stage']} | {r['ms_per_page']} | {r['share']:.0%} |" for r in prof["stages"]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=1000, help="synthetic full pages per speed mode")
    parser.add_argument("--vote-pages", type=int, default=100, help="pages for the (slow) full vote")
    parser.add_argument("--small-pages", type=int, default=100, help="the cascade again at this N (memory flat in N?)")
    parser.add_argument("--profile-pages", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="data/06_models/benchmark_fieldreader", help="a trained field reader folder")
    parser.add_argument("--ensemble", default="", help="a saved field reader ensemble (oof_ensemble_benchmark.py): "
                        "digitize's default engines once it is trained")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "digitize_benchmark"))
    parser.add_argument("--modes", default="profile,accuracy,vote,fieldreader,cascade,cascade_small,dask_local,"
                                           "dask_scheduler,crops")
    parser.add_argument("--note", default="", help="e.g. what else ran on the machine")
    parser.add_argument("--out", default=str(RESULTS / "digitize_benchmark.json"))
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the .json")
    args = parser.parse_args()
    if args.ensemble:  # child processes (one per mode) read it from the environment
        global ENSEMBLE
        ENSEMBLE = os.environ["DIGITIZE_BENCHMARK_ENSEMBLE"] = str(Path(args.ensemble).resolve())
    if args.report:
        result = json.loads(Path(args.out).read_text())
        estimate_curve_speed(result)
        Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
        Path(args.out).with_suffix(".md").write_text(markdown(result))
        return 0
    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    modes = [m for m in args.modes.split(",") if m]
    result: dict[str, Any] = {**machine(), "note": args.note, "pages": args.pages, "workers": args.workers,
                              "model": args.model, "ensemble": args.ensemble or None, "command": " ".join(sys.argv),
                              "modes": {}}
    out_path = Path(args.out)
    previous = json.loads(out_path.read_text()) if out_path.is_file() else {}

    def save() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")

    cascade = conf("ensemble").get("cascade", {})
    if "accuracy" in modes:
        print("accuracy: readings of the held-out train forms and the validation crops ...", flush=True)
        cache = work / "cache_shared_crops"
        train_labels, train = readings("train", slice(-100, None), args.model, cache)
        val_labels, val = readings("validation", slice(None), args.model, cache)
        full_train = method_scores(train_labels, train, cascade)["vote"]["FLA"]
        train_curve = curve(train_labels, train)
        chosen = choose(train_curve)
        cascade = {"threshold": chosen["threshold"], "escalate_invalid": chosen["escalate_invalid"]}
        result["cascade"] = {"chosen_on": "the 100 held-out train forms (last 100 of the shared train split)",
                             "rule": "highest held-out FLA, then fewest forms escalated; the default when its "
                                     "validation FLA is within 0.5 of the full vote's",
                             "full_vote_heldout_FLA": full_train, "chosen": chosen,
                             "heldout_train_curve": train_curve, "validation_curve": curve(val_labels, val)}
        result["accuracy_validation"] = method_scores(val_labels, val, cascade)
        print(json.dumps(result["accuracy_validation"], indent=1), flush=True)
        save()
    else:
        result["cascade"] = previous.get("cascade")
        result["accuracy_validation"] = previous.get("accuracy_validation")

    pages = synthetic_pages(work, max(args.pages, args.vote_pages, args.small_pages, args.profile_pages))
    if "profile" in modes:
        print(f"profile: {args.profile_pages} pages, cascade, one process ...", flush=True)
        result["profile"] = profile(pages[: args.profile_pages], args.model, work)
        save()
    base = {"model": args.model, "workers": args.workers, "cascade": cascade}
    plans = {
        "vote": ({**base, "method": "vote"}, pages[: args.vote_pages]),
        "fieldreader": ({**base, "method": "fieldreader"}, pages[: args.pages]),
        "cascade": ({**base, "method": "cascade"}, pages[: args.pages]),
        "cascade_small": ({**base, "method": "cascade"}, pages[: args.small_pages]),
        "dask_local": ({**base, "method": "cascade", "dask": {"n_workers": args.workers}}, pages[: args.pages]),
    }
    if "crops" in modes and (SHARED / "validation").is_dir():
        crops = sorted(str(p) for p in (SHARED / "validation").glob("*.png"))
        plans["crops"] = ({**base, "method": "fieldreader"}, crops)
    for name, (spec, inputs) in plans.items():
        if name in modes:
            print(f"speed: {name} ({len(inputs)} inputs) ...", flush=True)
            result["modes"][name] = {**measure(name, {**spec, "inputs": write_list(work, name, inputs)}, work),
                                     "method": spec["method"], "dask": spec.get("dask")}
            save()
    if "dask_scheduler" in modes:
        print(f"speed: dask_scheduler (dask scheduler + {args.workers} dask worker processes) ...", flush=True)
        with SeparateCluster(args.workers) as cluster:
            spec = {**base, "method": "cascade", "dask": {"scheduler": cluster.address},
                    "inputs": write_list(work, "dask_scheduler", pages[: args.pages])}
            row = measure("dask_scheduler", spec, work, extra=cluster.pids)
        reference = work / "records_cascade.jsonl"
        row["same_records_as_local_pool"] = same_records(work / "records_dask_scheduler.jsonl", reference) \
            if reference.is_file() else None
        result["modes"]["dask_scheduler"] = {**row, "method": "cascade", "dask": "separate scheduler + workers"}
        save()
    local = result["modes"].get("cascade")
    for name in ("dask_local", "dask_scheduler"):
        row = result["modes"].get(name)
        if row and local:
            row["vs_local_pool"] = round(row["forms_per_s"] / local["forms_per_s"], 2)
    if local and result["modes"].get("cascade_small"):
        small = result["modes"]["cascade_small"]
        result["main_peak_rss_mb_by_pages"] = {small["forms"]: small["peak_rss_mb"]["main"],
                                               local["forms"]: local["peak_rss_mb"]["main"]}
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    estimate_curve_speed(result)
    save()
    out_path.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_mode":
        sys.path.insert(0, str(ROOT / "src"))
        print(json.dumps(run_mode(json.loads(Path(sys.argv[2]).read_text()))))
        sys.exit(0)
    sys.exit(main())
