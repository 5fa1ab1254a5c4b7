"""A distance-threshold membership-inference attack on shared synthetic samples.

The attacker holds the shared samples S and a candidate record x and guesses "x was in the
training set" when x lies closer to S than a threshold (members leak into generators, so their
nearest synthetic neighbour tends to be closer; cf. GAN-Leaks). We score it with the node's own
training records (members) against its held-out test records (non-members, same hospital and
scanner), equal numbers of each. The threshold is fitted on one half and scored on the other
(two-fold), so 0.5 means the samples reveal nothing and 1.0 means they give the patients away.
"""
from __future__ import annotations

import numpy as np
import torch

from fedsim.privacy.near_duplicate import nearest_distances


def _best_threshold(scores: np.ndarray, member: np.ndarray) -> float:
    cands = np.concatenate([[-np.inf], np.sort(scores)])
    accs = [((scores <= t) == member).mean() for t in cands]
    return float(cands[int(np.argmax(accs))])


def membership_attack(shared: torch.Tensor, members: torch.Tensor, non_members: torch.Tensor,
                      seed: int = 0) -> dict[str, float]:
    """Attack accuracy (two-fold) and the members' / non-members' mean distance to the shared set."""
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non_members))
    if n < 2 or len(shared) == 0:
        return {"mia_acc": float("nan"), "member_dist": float("nan"), "nonmember_dist": float("nan")}
    m = members[torch.as_tensor(rng.permutation(len(members))[:n])]
    o = non_members[torch.as_tensor(rng.permutation(len(non_members))[:n])]
    scores = torch.cat([nearest_distances(m, shared), nearest_distances(o, shared)]).numpy()
    truth = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    fold = rng.permutation(2 * n) % 2
    correct = 0
    for f in (0, 1):
        t = _best_threshold(scores[fold != f], truth[fold != f])
        correct += int(((scores[fold == f] <= t) == truth[fold == f]).sum())
    return {"mia_acc": correct / (2 * n), "member_dist": float(scores[:n].mean()),
            "nonmember_dist": float(scores[n:].mean())}
