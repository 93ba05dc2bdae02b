"""Ensembles over the engines' predictions: the offline constraint-aware vote and the LLM merge.

Floor 5. May import: floors 0-4 (``datasets``, ``metrics``, ``predictions``, ``fields``,
``registry``, ``training``) — not ``engines`` (same floor), never ``methods``, ``digitize`` or
``pipelines``. Which engines feed the vote and with which calibration is decided one floor up,
in :mod:`handwriting_pipeline.methods`.
"""

from handwriting_pipeline.ensemble.align import align_vote
from handwriting_pipeline.ensemble.llm import LLMMerger, load_prompt, parse_answer, render_prompt
from handwriting_pipeline.ensemble.settings import EnsembleSettings, LLMSettings, VoteSettings
from handwriting_pipeline.ensemble.vote import repair_fields, vote_form

# ``vote()`` itself is imported from its module (``from handwriting_pipeline.ensemble.vote import
# vote``): re-exporting it here would hide the ``vote`` submodule behind the function.

__all__ = [
    "EnsembleSettings", "LLMMerger", "LLMSettings", "VoteSettings", "align_vote", "load_prompt",
    "parse_answer", "render_prompt", "repair_fields", "vote_form",
]
