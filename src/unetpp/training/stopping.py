"""Best-epoch tracking and the early-stopping rule, kept apart so the rule is testable alone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Stop once `patience` consecutive epochs fail to beat the best val IoU.

    Improvement means strictly greater. The first epoch always counts as the
    best so far, so a run that never improves still keeps a model (epoch 1).
    """

    patience: int
    best_value: float = float("-inf")
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record `value` for `epoch`; True when it is a new best."""
        if value > self.best_value:
            self.best_value, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
