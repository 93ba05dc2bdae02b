"""What a finished run tells the user: where digitize wrote its files, and which method failed
on too many forms."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("handwriting_pipeline.hooks")


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
