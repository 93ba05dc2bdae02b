"""Project hooks: runs that cannot read each other's outputs, visible failures, short errors.

* ``before_pipeline_run`` pins every versioned dataset the run writes to the run's own version
  for reading back (Kedro otherwise reads "the newest version", which may be another run's when
  two runs overlap), claims that version (two runs started in the same millisecond get the next
  free one, :func:`claim_version`) and fills ``run_info`` (run id, start time, command line) for the report.
* ``after_pipeline_run`` ends an evaluate run non-zero, after everything was written, when a
  method failed on more than ``evaluation.max_failure_share`` of the forms (``evaluation_failures``)
  and logs where the report is.
* ``on_pipeline_error`` writes the full traceback to the log file only, moves aside any output of
  this run that was left half-written (full or read-only disk) so it is never read as valid,
  and makes the command line print one short line instead of a traceback box.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, Version

logger = logging.getLogger(__name__)

TRACEBACK_ENV = "HWP_TRACEBACK"  # set to 1 to see full tracebacks on the console


class RunFailed(RuntimeError):
    """A run that finished writing its outputs but must not count as a success."""


def _dataset(catalog: Any, name: str) -> Any:
    try:
        return catalog.get(name) if hasattr(catalog, "get") else catalog._get_dataset(name)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - a name the catalog cannot build: nothing to pin
        return None


def _log_file_handlers() -> list[logging.Handler]:
    handlers = []
    for log in (logging.getLogger(), logging.getLogger("handwriting_pipeline"), logging.getLogger("kedro")):
        handlers += [h for h in log.handlers if isinstance(h, logging.FileHandler)]
    return list(dict.fromkeys(handlers))


def log_file_path() -> str | None:
    """The log file the project's logging config writes (``info.log``), if any."""
    handlers = _log_file_handlers()
    return handlers[0].baseFilename if handlers else None


def _log_to_file_only(message: str, error: BaseException) -> None:
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, (), None)
    record.exc_text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for handler in _log_file_handlers():
        handler.handle(record)


def short_error(error: BaseException) -> str:
    """One line for the console: the innermost meaningful message of a (chained) error."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C): every finished form is in the cache; run the same command again to resume"
    text = str(error).strip() or type(error).__name__
    first = text.splitlines()[0]
    rest = len(text.splitlines()) - 1
    name = type(error).__name__
    prefix = "" if name in {"RunFailed"} else f"{name}: "
    return prefix + first + (f" (+{rest} more lines)" if rest and not isinstance(error, RunFailed) else "")


def install_short_excepthook() -> None:
    """Uncaught errors print one line (and the log file's name) instead of a traceback box.
    ``HWP_TRACEBACK=1`` keeps the normal traceback on the console."""
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
        return

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        where = log_file_path()
        sys.stderr.write(f"ERROR: {short_error(error)}\n")
        if not isinstance(error, KeyboardInterrupt) and where:
            sys.stderr.write(f"       (full traceback in {where}; {TRACEBACK_ENV}=1 shows it here)\n")
        sys.stderr.flush()
        if isinstance(error, KeyboardInterrupt):
            os._exit(130)  # noqa: SLF001 - do not wait for pool threads at interpreter exit

    sys.excepthook = hook


_INTERRUPTED = False


def _on_sigint(signum: int, frame: Any) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt where the run is


def _exit_fast_after_interrupt() -> None:
    """After Ctrl-C: end worker processes and exit now, instead of waiting for pool threads
    (a paid API call in flight could hold the exit for its whole read timeout). Every finished
    form is already in the cache (atomic writes), so nothing is lost."""
    if not _INTERRUPTED:
        return
    for child in multiprocessing.active_children():
        child.kill()
    try:
        sys.stderr.write(f"{short_error(KeyboardInterrupt())}\n")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(130)  # noqa: SLF001


def install_interrupt_handler() -> None:
    """Ctrl-C ends the run within about a second (see :func:`_exit_fast_after_interrupt`)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if not (sys.argv and Path(sys.argv[0]).name.startswith("kedro") and "run" in sys.argv[1:]):
        return  # only `kedro run` (not notebooks or other hosts of a session)
    signal.signal(signal.SIGINT, _on_sigint)
    atexit.register(_exit_fast_after_interrupt)  # registered last, so it runs first


def _is_half_written(path: Path) -> bool:
    """A file this run wrote that cannot be read back (checks the formats the project writes)."""
    try:
        if path.is_dir():
            return False
        if path.stat().st_size == 0:
            return True
        suffix = path.suffix.lower()
        if suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_metadata(path)
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                img.load()
        elif suffix in {".csv", ".md", ".jsonl"}:
            path.read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001
        return True
    return False


def _next_version(version: str) -> str:
    """The version string one millisecond later (Kedro's ``YYYY-MM-DDTHH.MM.SS.mmmZ`` format)."""
    stamp = datetime.strptime(version, "%Y-%m-%dT%H.%M.%S.%fZ") + timedelta(milliseconds=1)
    return stamp.strftime("%Y-%m-%dT%H.%M.%S.%f")[:-3] + "Z"


def claim_version(version: str, datasets: list[Any], attempts: int = 1000) -> tuple[str, list[Path]]:
    """A save version no other run holds: two runs started in the same millisecond get the same
    Kedro version and the second would fail writing ("Save path ... must not exist"). Each
    run claims its version by creating the version folders of its local datasets (``mkdir`` is
    atomic); a folder that exists means another run has it, so the next millisecond is tried.
    Returns the version and the folders created (removed again if still empty, :func:`release`)."""
    local = [d for d in datasets if getattr(d, "_protocol", "file") in ("file", None)]
    for _ in range(attempts):
        made: list[Path] = []
        # datasets may share a run folder (digitize's outputs): each folder once
        folders = dict.fromkeys(Path(str(d._get_versioned_path(version))).parent for d in local)  # noqa: SLF001
        try:
            for folder in folders:
                missing = [p for p in reversed(folder.parents) if not p.exists()]
                folder.parent.mkdir(parents=True, exist_ok=True)
                made.extend(missing)
                folder.mkdir()
                made.append(folder)
            return version, made
        except FileExistsError:
            release(made)
            version = _next_version(version)
    raise RuntimeError(f"no free save version after {attempts} tries from {version}")


def release(folders: list[Path]) -> None:
    """Remove the claimed folders nothing was written into (newest first)."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (an output was written) or already gone
            pass


class ProjectHooks:
    """See the module docstring."""

    def __init__(self) -> None:
        self._pinned: dict[str, Any] = {}
        self._save_version: str | None = None
        self._claimed: list[Path] = []  # version folders this run created (empty ones go at the end)

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        install_short_excepthook()
        install_interrupt_handler()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._pinned = {}
        self._save_version = None
        saves: dict[str, str] = {}
        for name in sorted(pipeline.all_outputs()):
            dataset = _dataset(catalog, name)
            if not isinstance(dataset, AbstractVersionedDataset) or not dataset._version:  # noqa: SLF001
                continue
            version = dataset._version  # noqa: SLF001
            save = version.save or dataset.resolve_save_version()
            if version.load is None and save:
                self._pinned[name] = dataset
                saves[name] = save
                self._save_version = self._save_version or save
        session = [self._pinned[n] for n, v in saves.items() if v == self._save_version]
        claimed, self._claimed = claim_version(self._save_version, session) if session else (self._save_version, [])
        for name, dataset in self._pinned.items():
            save = claimed if saves[name] == self._save_version else saves[name]
            dataset._version = Version(save, save)  # noqa: SLF001 - read back what this run wrote
            dataset._clear_version_cache()  # noqa: SLF001
        self._save_version = claimed
        info = {"run_id": self._save_version or "", "pipeline": run_params.get("pipeline_name") or "__default__",
                "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(["kedro", *sys.argv[1:]]) if sys.argv and "kedro" in sys.argv[0] else "",
                "cwd": os.getcwd()}
        try:
            if "run_info" in pipeline.all_inputs():
                catalog.save("run_info", info) if hasattr(catalog, "save") else catalog["run_info"].save(info)
        except Exception as err:  # noqa: BLE001
            logger.debug("run_info not set: %s", err)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        release(self._claimed)  # version folders of outputs this run did not write
        outputs = pipeline.all_outputs()
        report = self._pinned.get("evaluation_report")
        if report is not None:
            logger.info("Report: %s", report._get_load_path())  # noqa: SLF001
        log_digitize_outputs(self._pinned)
        if "evaluation_failures" not in outputs:
            return
        failures = catalog.load("evaluation_failures")
        message = failure_message(failures)
        if message:
            where = f" Report: {report._get_load_path()}." if report is not None else ""  # noqa: SLF001
            logger.error("%s%s", message, where)
            raise RunFailed(message + where)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        _log_to_file_only(f"run {run_params.get('session_id', '')} failed", error)
        for name, dataset in self._pinned.items():
            try:
                path = Path(str(dataset._get_load_path()))  # noqa: SLF001 - this run's version
            except Exception:  # noqa: BLE001
                continue
            if path.exists() and _is_half_written(path):
                target = path.with_name(path.name + ".partial")
                try:
                    os.replace(path, target)
                    logger.error("%s: half-written output moved to %s (never read as valid)", name, target)
                except OSError:
                    try:
                        path.unlink()
                        logger.error("%s: half-written output %s removed", name, path)
                    except OSError as err:
                        logger.error("%s: half-written output %s could not be removed (%s)", name, path, err)
        release(self._claimed)
        install_short_excepthook()


DIGITIZE_OUTPUTS = ("digitized_forms", "digitized_forms_csv", "digitize_review_queue", "digitize_summary")


def log_digitize_outputs(pinned: dict[str, Any]) -> None:
    """After a digitize run: where its files are (this run's folder and the stable ``latest``)."""
    paths = []
    for name in DIGITIZE_OUTPUTS:
        if name in pinned:
            try:
                paths.append(Path(str(pinned[name]._get_load_path())))  # noqa: SLF001
            except Exception:  # noqa: BLE001
                continue
    if not paths:
        return
    run_folder = paths[0].parent
    latest = run_folder.parent.parent / "latest"
    logger.info("Digitized: %s (this run: %s; newest run always at %s)", ", ".join(p.name for p in paths if p.exists()),
                run_folder, latest)


def failure_message(failures: dict[str, Any] | None) -> str:
    """One line naming what exceeded ``evaluation.max_failure_share`` ("" when nothing did)."""
    if not failures:
        return ""
    over = [m for m in failures.get("methods", []) if m.get("exceeds")]
    inputs = failures.get("inputs") or {}
    parts = [f"{m['method']} failed on {m['failed']} of {m['forms']} forms (first: {m['reasons'][0] if m['reasons'] else '?'})"
             for m in over]
    if inputs.get("exceeds"):
        parts.append(f"{inputs['rejected']} of {inputs['listed']} input files rejected or unreadable")
    if not parts:
        return ""
    share = failures.get("max_failure_share", 0)
    return (f"{'; '.join(parts)} - more than evaluation.max_failure_share={share:g}. Everything finished was "
            "written; accept partial failure with --params evaluation.max_failure_share=<share 0-1>.")


