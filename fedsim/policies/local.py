"""Local training only: every hospital on its own. The lower bound every federation must beat."""
from __future__ import annotations

from fedsim.policies.base import Policy


class LocalPolicy(Policy):
    name = "local"

    def run_round(self, node, r):
        return {"train_loss": node.train()}
