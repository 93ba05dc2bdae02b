"""Project hooks: runs that cannot read each other's outputs, visible failures, short errors.

* ``before_pipeline_run`` pins every versioned dataset the run writes to the run's own version
  for reading back (Kedro otherwise reads "the newest version", which may be another run's when
  two runs overlap), claims that version (two runs started in the same millisecond get the next
  free one, :func:`claim_version`), checks the run's ``form`` (:func:`~handwriting_pipeline.fields.formspec.active_form`)
  and fills ``run_info`` (run id, start time, command line, form and its fields) for the report.
* ``after_pipeline_run`` ends an evaluate run non-zero, after everything was written, when a
  method failed on more than ``evaluation.max_failure_share`` of the forms (``evaluation_failures``)
  and logs where the report is.
* ``on_pipeline_error`` writes the full traceback to the log file only, moves aside any output of
  this run that was left half-written (full or read-only disk) so it is never read as valid,
  and makes the command line print one short line instead of a traceback box.

The pieces live by concern: :mod:`.versions` (run versions, half-written outputs),
:mod:`.console` (short errors, Ctrl-C) and :mod:`.reports` (digitize outputs, failure message).

Floor 8, beside ``pipelines``. May import: floors 0-7 (today ``errors`` and ``fields``) — never
``pipelines/``: Kedro runs the hooks around the pipelines, nothing imports them.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, Version

from handwriting_pipeline.errors import RunFailed
from handwriting_pipeline.fields.formspec import active_form, data_root
from handwriting_pipeline.hooks.console import _log_to_file_only, install_interrupt_handler, install_short_excepthook
from handwriting_pipeline.hooks.reports import failure_message, log_digitize_outputs
from handwriting_pipeline.hooks.versions import _dataset, _is_half_written, claim_version, release

logger = logging.getLogger(__name__)


def _param(catalog: Any, name: str) -> Any:
    """A run parameter (``params:<name>``) from the catalog; None when the run has none."""
    try:
        return catalog.load(f"params:{name}")
    except Exception:  # noqa: BLE001 - no such parameter in this run
        return None


def check_data_root(form: str | None, runtime_params: dict[str, Any]) -> None:
    """The catalog keeps a form's data under :func:`~handwriting_pipeline.fields.formspec.data_root`
    of the ``form`` given on the command line: a form chosen elsewhere (``parameters.yml``) would
    read and write the HSF form's data, so that stops the run with what to do."""
    given = runtime_params.get("form")
    if data_root(given) != data_root(form):
        raise ValueError(f"form '{form}' is set in the parameters but the command line names "
                         f"{given or 'none'}: choose the form on the command line (kedro run --params form={form}) "
                         f"so its data is kept apart under {data_root(form)}/")


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
        form = active_form(_param(catalog, "form"))  # a bad form spec stops the run here
        check_data_root(_param(catalog, "form"), run_params.get("runtime_params") or {})
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
                "form": form.name, "fields": list(form.keys),
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
