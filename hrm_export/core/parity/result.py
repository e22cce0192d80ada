"""One run of the reference and a candidate on the same feeds: what the parity comparator judges."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

HEADS = ("action_logits", "quantity", "q_values")


@dataclass
class RunResult:
    scope: str  # h_module | l_module | l_step | composed | streaming
    label: str  # the case, e.g. "throughput:max" or "day 3"
    feeds: dict[str, Tensor]
    ref: dict[str, Tensor]
    cand: dict[str, Tensor]

    def heads_only(self) -> RunResult:
        """The same result without feeds and caches: what the decision gates need, a few MB at most."""
        return RunResult(self.scope, self.label, {}, {k: self.ref[k] for k in HEADS},
                         {k: self.cand[k] for k in HEADS})
