"""Ensembles over the engines' predictions: the offline constraint-aware vote and the LLM merge."""

from handwriting_pipeline.ensemble.align import align_vote
from handwriting_pipeline.ensemble.llm import LLMMerger, LLMSettings, load_prompt, parse_answer, render_prompt
from handwriting_pipeline.ensemble.vote import repair_fields, vote_form

# ``vote()`` itself is imported from its module (``from handwriting_pipeline.ensemble.vote import
# vote``): re-exporting it here would hide the ``vote`` submodule behind the function.

__all__ = [
    "LLMMerger", "LLMSettings", "align_vote", "load_prompt",
    "parse_answer", "render_prompt", "repair_fields", "vote_form",
]
