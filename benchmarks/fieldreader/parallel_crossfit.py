"""Out-of-fold readers trained side by side (not a test): one ``crossfit_benchmark.py --only-fold``
process per fold and training seed, ``--jobs`` at a time (default all at once: on a machine with
many cores, or many cores and one GPU, the folds need not wait for each other), then per seed one
``crossfit_benchmark.py --collect`` that trains nothing and writes the results of the folds
complete in its folder (``fieldreader_crossfit_<tag>_s<seed>.{json,md}`` and
``fieldreader_oof_readings_<tag>_s<seed>.csv``). Every fold is resumable as in ``crossfit_benchmark.py``.

Usage (the arguments after ``--`` go to every ``crossfit_benchmark.py`` call)::

    # two folds at a time on 2 cores, one thread each
    python benchmarks/fieldreader/parallel_crossfit.py --seeds 42 --fold-list 1 2 3 4 --jobs 2 --tag drop \
        -- --labels drop_disagreements --max-minutes 60
    # ten readers at once on one GPU (16 cores): 5 folds x 2 seeds
    python benchmarks/fieldreader/parallel_crossfit.py --seeds 42 7 --tag gpu30 \
        -- --epochs 30 --max-minutes 6 --patience 6 --accelerator gpu --precision 32-true

writes the fold readers to ``<models>/crossfit_<tag>_s<seed>/fold_<k>`` (``--models``, default
``data/06_models``) and each process's log beside them (``fold_<k>.log``, ``results.log``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("crossfit_benchmark.py")


def _launch(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, str(SCRIPT), *args, "--threads", "1"], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _run(commands: dict[str, tuple[list[str], Path]], jobs: int, what: str) -> list[str]:
    """Runs the commands, at most ``jobs`` at a time, printing each as it ends (and its log's tail
    when it failed); returns the names of the failed ones."""
    started, failed, waiting, running = time.time(), [], list(commands), {}
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            running[name] = _launch(*commands[name])
        for name, proc in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            done = len(commands) - len(waiting) - len(running)
            print(f"[{time.time() - started:6.0f} s] {what} {name}: exit {proc.returncode} ({done}/{len(commands)} done)",
                  flush=True)
            if proc.returncode:
                failed.append(name)
                print("".join(commands[name][1].read_text(errors="replace").splitlines(keepends=True)[-25:]), flush=True)
        time.sleep(2)
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold-list", type=int, nargs="+", default=None, help="only these folds (default: all)")
    parser.add_argument("--jobs", type=int, default=0, help="processes at a time (0: all at once)")
    parser.add_argument("--tag", default="parallel", help="names the model folders and the results")
    parser.add_argument("--models", default="data/06_models", help="where the crossfit folders go")
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks" / "results"), help="where the results go")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then crossfit_benchmark.py arguments")
    args = parser.parse_args()
    rest = [a for a in args.rest if a != "--"]
    out = {seed: Path(args.models) / f"crossfit_{args.tag}_s{seed}" for seed in args.seeds}
    common = ["--folds", str(args.folds), *rest]
    train = {f"seed {seed} fold {k}": ([*common, "--seed", str(seed), "--out", str(folder), "--only-fold", str(k)],
                                       folder / f"fold_{k}.log")
             for seed, folder in out.items() for k in (args.fold_list or range(args.folds))}
    failed = _run(train, args.jobs or len(train), "train")
    results = Path(args.results_dir)
    collect = {f"seed {seed}": ([*common, "--seed", str(seed), "--out", str(folder), "--collect", "--results",
                                 str(results / f"fieldreader_crossfit_{args.tag}_s{seed}")], folder / "results.log")
               for seed, folder in out.items()}
    failed += _run(collect, args.jobs or len(collect), "results")
    print("failed:", failed or "none", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
