"""The console side of a run: one short line instead of a traceback box, the full traceback in
the log file only, and Ctrl-C that ends a run within about a second."""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from handwriting_pipeline.errors import RunFailed

logger = logging.getLogger("handwriting_pipeline.hooks")

TRACEBACK_ENV = "HWP_TRACEBACK"  # set to 1 to see full tracebacks on the console


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
