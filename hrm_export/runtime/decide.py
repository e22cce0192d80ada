"""The runtime's call of the decision rule: heads of one backend call → a Timeline, or a typed refusal."""

from __future__ import annotations

import numpy as np
import torch

from hrm_export.core.decisions import NOT_HALTED, Timeline, timeline
from hrm_export.runtime.errors import NonFiniteOutput
from model_src.errors import NonFiniteOutputError

HEADS = ("action_logits", "quantity", "q_values")


def no_halts(batch: int) -> np.ndarray:
    return np.full(batch, NOT_HALTED, dtype=np.int64)  # (B,)


def decide(module: str, heads: tuple[torch.Tensor, torch.Tensor, torch.Tensor], first_minute: int,
           halt_minute: np.ndarray, session_minutes: int, symbols: list[str] | None = None) -> Timeline:
    """The decision rule over one call's heads; a non-finite output becomes NonFiniteOutput naming the module,
    the output, the instrument (symbol) and the session minute, never a decision."""
    try:
        return timeline(*heads, first_minute=first_minute, halt_minute=halt_minute, session_minutes=session_minutes)
    except NonFiniteOutputError as e:
        who = f"{symbols[e.instrument]!r} (row {e.instrument})" if symbols else f"{e.instrument}"
        raise NonFiniteOutput(f"{module} output {e.output}: non-finite value at instrument {who}, session minute "
                              f"{e.minute}; no decision was made",
                              hint="the artifact or the model produces NaN/Inf here: run `hrm-export verify` on the "
                              "bundle and check the checkpoint's weights") from None
