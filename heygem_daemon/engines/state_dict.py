"""How a checkpoint's state dict differs from the network it should load into, in words for the admin.

Every engine that loads weights checks keys and shapes before copying any tensor, so a wrong
file is named with what does not fit instead of failing deep inside ``load_state_dict``.
"""

from __future__ import annotations

import torch

#: how many offending keys an error message names
SHOWN_KEYS = 3


def mismatches(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and wrongly shaped keys, a few of each named; empty when ``state`` fits."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} is {tuple(state[k].shape)}, expected {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) ({', '.join(missing[:SHOWN_KEYS])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) ({', '.join(unexpected[:SHOWN_KEYS])})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es) ({'; '.join(wrong[:SHOWN_KEYS])})")
    return problems
