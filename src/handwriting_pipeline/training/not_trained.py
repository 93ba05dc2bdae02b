"""The marker a training step returns for a model it did not train."""


class NotTrained:
    """What a training node returns for a model it did not train (``train.models``): the model
    dataset saves nothing and its last saved version stays (Kedro does not save ``None``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"NotTrained({self.reason!r})"
