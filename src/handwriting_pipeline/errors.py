"""Errors the project raises on purpose (floor 0: imports nothing from the project).

Floor 0 (ground). May import: nothing from this project.
"""


class RunFailed(RuntimeError):
    """A run that finished writing its outputs but must not count as a success."""
