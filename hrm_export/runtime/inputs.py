"""Checks on tokens before they reach a backend: rank, batch, feature count, finiteness, each feature's valid
range (the bundle's `token_ranges`), profile limits.

Everything is checked before any state changes, so a rejected input leaves a session as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hrm_export.core.errors import ManifestError
from hrm_export.runtime.errors import InputError, ProfileError


@dataclass(frozen=True)
class Limits:
    """What one runtime accepts, from the artifacts' profile (or the model's config for from_model)."""

    batch: int  # instruments per backend call; more are split into chunks of this size
    days: int  # look-back days per instrument
    minutes: int  # minutes in one full-session pass (run_day)
    new_minutes: int  # minutes per l_step call; a longer push is split into calls of this size
    total_minutes: int  # minutes one streaming session can hold (past + new)
    profile: str = "model config"
    past_minutes: int | None = None  # cached minutes an l_step call may follow (None: total_minutes - 1)

    @classmethod
    def from_axes(cls, axes: dict[str, tuple[int, int, int]], cfg, profile: str) -> Limits:
        top = lambda name, default: int(axes[name][2]) if name in axes else default  # noqa: E731
        new = top("new_minutes", cfg.max_minutes)
        past = top("past_minutes", cfg.max_minutes - 1)
        total = min(cfg.max_minutes, past + new)
        return cls(top("batch", 64), min(top("days", cfg.max_days), cfg.max_days),
                   min(top("minutes", cfg.max_minutes), cfg.max_minutes), new, total, profile, past)

    @property
    def max_past(self) -> int:
        return self.total_minutes - 1 if self.past_minutes is None else self.past_minutes

    def past_needed(self, first: int, n_new: int) -> int:
        """The most cached minutes an l_step call of a push of n_new minutes at minute `first` follows: the push
        is split into calls of at most new_minutes, the last starting at first + k·new_minutes."""
        return first + (n_new - 1) // self.new_minutes * self.new_minutes

    def streamable(self, session_minutes: int, step: int) -> int:
        """The most cached minutes a session of this length, pushed `step` minutes at a time, needs."""
        last = (session_minutes - 1) // step * step  # where the last push starts
        return self.past_needed(last, session_minutes - last)


@dataclass(frozen=True)
class Book:
    """The valid range of every feature of one token book ("days" or "minutes")."""

    names: tuple[str, ...]
    low: torch.Tensor  # (F,) float32
    high: torch.Tensor  # (F,) float32


def token_books(record: dict, cfg, where: str) -> dict[str, Book]:
    """The bundle's `token_ranges` record (or, when it has none, model_src.features' ranges for a model with
    those features) as Books; {} when neither applies. A malformed record is a ManifestError naming it."""
    from model_src.features import token_ranges

    record = record or token_ranges(cfg.n_day_features, cfg.n_minute_features)
    books = {}
    for book, n in (("days", cfg.n_day_features), ("minutes", cfg.n_minute_features)):
        if not record:
            break
        table = record.get(book) if isinstance(record, dict) else None
        pairs = list(table.values()) if isinstance(table, dict) else []
        ok = len(pairs) == n and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and np.isfinite(v) for v in p) and p[0] <= p[1]
            for p in pairs)
        if not ok:
            raise ManifestError(f"{where}: token_ranges.{book} is not {n} [low, high] pairs, one per feature",
                                hint="re-export the bundle: hrm-export export --out DIR")
        books[book] = Book(tuple(table), torch.tensor([p[0] for p in pairs], dtype=torch.float32),
                           torch.tensor([p[1] for p in pairs], dtype=torch.float32))
    return books


def as_tokens(x, name: str, n_features: int, batch: int | None = None, book: Book | None = None, first: int = 0,
              symbols: list[str] | None = None) -> torch.Tensor:
    """`x` (B, N, F) as a float32 CPU tensor, or InputError naming what is wrong and how to fix it.

    Values must be finite and, with a `book`, inside each feature's valid range. A bad value is named by its
    instrument (symbol), its step — the session minute for minutes, `first` being the session minute of
    x[:, 0] — and its feature."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(f"{name}: dtype {x.dtype} is not floating point", hint="pass float32 tokens")
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise InputError(f"{name}: dtype {x.dtype} is not floating point", hint="pass float32 tokens")
        x = x.detach().to("cpu", torch.float32)
    else:
        raise InputError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}",
                         hint="pass tokens as an array of shape (batch, steps, features)")
    if x.ndim == 2:
        hint = f"add the instrument axis: {name}[None] for one instrument"
        raise InputError(f"{name}: shape {tuple(x.shape)} has no batch axis; expected (batch, steps, {n_features})",
                         hint=hint)
    if x.ndim != 3:
        raise InputError(f"{name}: shape {tuple(x.shape)} is not (batch, steps, {n_features})",
                         hint="pass a 3-d array: instruments × steps × features")
    if x.shape[2] != n_features:
        raise InputError(f"{name}: {x.shape[2]} features per step, the model takes {n_features}",
                         hint="build tokens with model_src.features for the model's feature set")
    if batch is not None and x.shape[0] != batch:
        raise InputError(f"{name}: batch {x.shape[0]} but this session holds {batch} instrument(s)",
                         hint="push one row per instrument of the session, in the order of start_day")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise InputError(f"{name}: shape {tuple(x.shape)} is empty", hint="pass at least one step per instrument")
    check_values(x, name, book, first, symbols)
    return x.contiguous()


def check_values(x: torch.Tensor, name: str, book: Book | None, first: int = 0,
                 symbols: list[str] | None = None) -> None:
    """InputError at the first NaN/Inf, then at the first value outside its feature's valid range."""
    def where(b: int, t: int, f: int) -> str:
        who = f"{symbols[b]!r} (row {b})" if symbols else f"{b}"
        step = f"session minute {first + t}" if name == "minutes" else f"look-back day {first + t}"
        feature = f"feature {f} ({book.names[f]})" if book is not None else f"feature {f}"
        return f"instrument {who}, {step}, {feature}"

    finite = torch.isfinite(x)
    if not bool(finite.all()):
        b, t, f = (int(i) for i in (~finite).nonzero()[0])
        raise InputError(f"{name}: non-finite value {x[b, t, f].item()} at {where(b, t, f)}",
                         hint="fill or drop missing bars before tokenising (the model has no NaN semantics)")
    if book is None:
        return
    outside = (x < book.low) | (x > book.high)  # (B, N, F)
    if bool(outside.any()):
        b, t, f = (int(i) for i in outside.nonzero()[0])
        lo, hi = float(book.low[f]), float(book.high[f])
        raise InputError(f"{name}: value {x[b, t, f].item():.6g} at {where(b, t, f)} is outside the feature's valid "
                         f"range [{lo:g}, {hi:g}] ({int(outside.sum())} value(s) outside)",
                         hint="pass tokens made by model_src.features (every feature is bounded), not raw prices "
                         "or unscaled values; the bundle's manifest lists each range under token_ranges")


def check_days(days: torch.Tensor, limits: Limits) -> None:
    if days.shape[1] > limits.days:
        raise ProfileError(
            f"days: {days.shape[1]} look-back days, profile {limits.profile!r} admits at most {limits.days}",
            hint=f"pass the latest {limits.days} days (days[:, -{limits.days}:]) or export with a larger profile",
        )


def check_session_minutes(minutes: torch.Tensor, limits: Limits) -> None:
    if minutes.shape[1] > limits.minutes:
        raise ProfileError(
            f"minutes: {minutes.shape[1]} minutes, profile {limits.profile!r} admits at most {limits.minutes}",
            hint="a session has at most that many minutes; split the input by trading day",
        )


def check_int(value, name: str, low: int, high: int, hint: str) -> int:
    """`value` as an int in low..high (numpy integers too; bools, strings and floats refused), else InputError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}={value!r} is a {type(value).__name__}, not an int", hint=hint)
    if not low <= value <= high:
        bound = f"outside {low}..{high}" if high < 2**31 else f"below {low}"
        raise InputError(f"{name}={value} is {bound}", hint=hint)
    return int(value)
