"""Replay a recorded day through the runtime, as the trading system would see it (what `hrm-export run` does).

Inputs are token files — .npy (an array), .npz (the array named `days` / `minutes`, or its only array),
shaped (D, F_day) / (T, F_min) for one instrument or (B, D, F_day) / (B, T, F_min) for several — or bar
files (.csv / .parquet), of which `model_src.data.session_sample` makes one session's tokens on an exchange's
calendar (the last complete session, or a date), with the session's facts and its repair report. Arrays are
loaded with allow_pickle=False. Everything about the day is checked before the first push: its length against
the model and the profile, every token's value, so a bad file is refused up front and not 390 minutes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hrm_export.core.decisions import Timeline
from hrm_export.core.errors import ProfileError
from hrm_export.runtime.errors import InputError
from hrm_export.runtime.inputs import as_tokens
from hrm_export.runtime.runtime import HRMRuntime

BAR_SUFFIXES = (".csv", ".parquet", ".pq", ".txt", ".gz")
NPY_MAGIC, ZIP_MAGICS = b"\x93NUMPY", (b"PK\x03\x04", b"PK\x05\x06")
TOKEN_HINT = "pass tokens as .npy/.npz (np.save / np.savez), or bar files (.csv/.parquet) as both --days and --minutes"


@dataclass
class ReplayDay:
    """One day to replay: its tokens, how long its session is and, from bar files, what the calendar and the
    repairs say about it."""

    days: np.ndarray  # (B, D, F_day)
    minutes: np.ndarray  # (B, T, F_min)
    label: str  # the session's date (bar files) or the minute file's name (tokens): scopes the inference cache
    session_minutes: int  # the session's length: its close, where an unhalted instrument halts, is minute N - 1
    facts: object = None  # bar files: model_src.calendars.SessionFacts (exchange, open, close, break, length)
    report: object = None  # bar files: model_src.repairs.SessionReport (minutes filled and bars dropped, and why)
    file_repairs: dict[str, int] = field(default_factory=dict)  # bar files: file-level counts (sorting, dups, ...)
    sources: tuple[str, str] = ("days", "minutes")  # the files the days and the minutes came from

    def summary(self) -> dict:
        """What a person or a log needs to know about the replayed session (JSON-able)."""
        out: dict = {"date": self.label, "session_minutes": self.session_minutes, "minutes": self.minutes.shape[1]}
        if self.facts is not None:
            f = self.facts
            out.update(exchange=f.exchange, session=f.describe(), early_close=f.early_close)
        if self.report is not None:
            out.update(repairs=self.report.as_dict(), repairs_line=self.report.line(), file_repairs=self.file_repairs)
        return out


def is_bar_file(path: Path) -> bool:
    return Path(path).suffix.lower() in BAR_SUFFIXES


def load_tokens(path: Path, kind: str) -> np.ndarray:
    """Token array `kind` ("days" | "minutes") from .npy / .npz, with a batch axis (B, N, F)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {'a directory' if path.is_dir() else 'no such file'}", hint=TOKEN_HINT)
    with path.open("rb") as f:
        head = f.read(64)
    if not head.startswith(NPY_MAGIC) and not head.startswith(ZIP_MAGICS):
        first_line = head.splitlines()[0][:40].decode(errors="replace") if head.strip() else ""
        what = "an empty file" if not head else (
            f"a text file (it starts {first_line!r})" if _looks_text(head) else "neither a .npy nor a .npz file")
        raise InputError(f"{path}: {what}, not a {kind} token array", hint=TOKEN_HINT)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = list(loaded.files)
                if kind not in names and len(names) != 1:
                    raise InputError(f"{path}: arrays {names}, none named {kind!r}",
                                     hint=f"save it as np.savez(path, {kind}=array)")
                arr = loaded[kind if kind in names else names[0]]
        else:
            arr = loaded
    except ValueError as e:
        if "pickle" in str(e):  # an object array: loading it would unpickle, which is never done
            raise InputError(f"{path}: holds Python objects, not numbers (refused: reading it would run pickle)",
                             hint="save tokens with np.save(path, float32 array)") from None
        raise InputError(f"{path}: not a readable array ({e})", hint=TOKEN_HINT) from None
    except (OSError, EOFError) as e:  # truncated or corrupt .npy / .npz
        raise InputError(f"{path}: a truncated or corrupt .npy/.npz ({e})", hint=TOKEN_HINT) from None
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{path}: dtype {arr.dtype}, tokens are floats", hint="save float32 tokens")
    if arr.ndim not in (2, 3):
        raise InputError(f"{path}: shape {arr.shape}, expected ({kind}, features) or (instruments, {kind}, features)",
                         hint=TOKEN_HINT)
    return arr[None] if arr.ndim == 2 else arr


def _looks_text(head: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def load_bars(days_path: Path, minutes_path: Path, *, exchange: str | None = None, date: str | None = None,
              tz: str | None = None, policy=None, max_minutes: int = 390, max_days: int = 64) -> ReplayDay:
    """Daily and minute bar files of one symbol → one session's tokens via model_src.data.session_sample: the
    session on `date`, or the last complete one; refused in one line when the policy, the context or the model's
    session length forbid it."""
    from model_src.calendars import DEFAULT_EXCHANGE
    from model_src.data import RepairPolicy, RepairReport, session_sample

    report = RepairReport(str(minutes_path))
    s = session_sample(days_path, minutes_path, exchange=exchange or DEFAULT_EXCHANGE, date=date, tz=tz,
                       max_minutes=max_minutes, max_days=max_days, policy=policy or RepairPolicy(), report=report)
    return ReplayDay(s.days[None], s.minutes[None], str(s.date), s.facts.minutes, s.facts, s.report,
                     report.as_dict(), (str(days_path), str(minutes_path)))


def load_day(days_path: Path, minutes_path: Path, *, date: str | None = None, exchange: str | None = None,
             tz: str | None = None, policy=None, session_minutes: int | None = None, max_minutes: int = 390,
             max_days: int = 64) -> ReplayDay:
    """The day in two token files or two bar files. Options that only mean something for the other kind of file
    are refused rather than ignored (a --date cannot pick a day out of token files, which hold one)."""
    bars = [is_bar_file(p) for p in (days_path, minutes_path)]
    if bars[0] != bars[1]:
        tok, bar = (days_path, minutes_path) if bars[1] else (minutes_path, days_path)
        raise InputError(f"{bar} is a bar file and {tok} is not: the day and minute inputs must be of one kind",
                         hint=TOKEN_HINT)
    if bars[0]:
        if session_minutes is not None:
            raise InputError("--session-minutes is for token files: with bar files the exchange calendar gives the "
                             "session's length", hint="drop --session-minutes (use --exchange for the calendar)")
        return load_bars(days_path, minutes_path, exchange=exchange, date=date, tz=tz, policy=policy,
                         max_minutes=max_minutes, max_days=max_days)
    bar_only = {"--date": date, "--exchange": exchange, "--tz": tz, "--max-filled/--allow-over-limit": policy}
    given = [k for k, v in bar_only.items() if v is not None]
    if given:
        raise InputError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to bar files, and "
                         f"{minutes_path} holds tokens of one day", hint=f"drop {', '.join(given)}, or pass bar "
                         "files (.csv/.parquet) as --days and --minutes")
    days, minutes = load_tokens(days_path, "days"), load_tokens(minutes_path, "minutes")
    if days.shape[0] != minutes.shape[0]:
        raise InputError(f"{days_path} holds {days.shape[0]} instrument(s), {minutes_path} {minutes.shape[0]}",
                         hint="one row of days and one of minutes per instrument, in the same order")
    n = minutes.shape[1] if session_minutes is None else session_minutes
    return ReplayDay(days, minutes, Path(minutes_path).stem, n, sources=(str(days_path), str(minutes_path)))


def check_day(rt: HRMRuntime, day: ReplayDay, stream: bool, step: int = 1) -> None:
    """Everything about the day the runtime would refuse, before the first push: the session's length against the
    profile and the model, the look-back, and every token's value (named by instrument, session minute, feature)."""
    lim = rt.limits
    days_src, what = day.sources
    top = lim.total_minutes if stream else lim.minutes
    given, length = day.minutes.shape[1], day.session_minutes  # minutes of tokens, minutes of the session
    if given < 1:
        raise InputError(f"{what}: 0 minutes of tokens", hint="pass the session's minutes, at least one")
    if stream and given <= top and lim.streamable(given, step) > lim.max_past:
        top = lim.max_past + 1  # what one-minute pushes can stream under this profile
    if max(given, length) > top:
        longest = max(given, length)
        model = rt.cfg.max_minutes
        fix = (f"export a model configured for it (HRMConfig.max_minutes={longest}) with a profile whose minutes reach "
               f"{longest}" if longest > model else f"export with a profile whose minutes reach {longest} "
               f"(docs/runtime.md, 'Sessions longer than 390 minutes')")
        raise ProfileError(f"{what}: a session of {longest} minutes, but profile {lim.profile!r} of this bundle admits "
                           f"{top} (the model's max_minutes is {model})", hint=f"{fix}; or split the file by session")
    if length < given:
        raise InputError(f"{what}: --session-minutes {length} is less than the {given} minutes given",
                         hint=f"pass the session's full length, at least {given}")
    if day.days.shape[1] > lim.days:
        raise ProfileError(f"{days_src}: {day.days.shape[1]} look-back days, profile {lim.profile!r} admits {lim.days}",
                           hint=f"keep the latest {lim.days} days, or export with a larger profile")
    for name, x, n, src in (("days", day.days, rt.cfg.n_day_features, days_src),
                            ("minutes", day.minutes, rt.cfg.n_minute_features, what)):
        try:
            as_tokens(x, name, n, batch=day.days.shape[0], book=rt.books.get(name))
        except InputError as e:
            raise InputError(f"{src}: {e}", hint=e.hint) from None


def replay(
    rt: HRMRuntime, day: ReplayDay, stream: bool = True, step: int = 1,
    on_push: Callable[[int], None] | None = None,
) -> Timeline:
    """Streaming: start_day, then push `step` minutes at a time (on_push(n) after each); else one run_day. The
    session's length is the day's (a half day closes early; a partial session kept by opt-in never reaches its
    close, so no instrument is made to halt there)."""
    check_day(rt, day, stream, step)
    if not stream:
        return rt.run_day(day.days, day.minutes, day=day.label, session_minutes=day.session_minutes)
    session = rt.session().start_day(day.days, day=day.label, session_minutes=day.session_minutes)
    parts = []
    for t in range(0, day.minutes.shape[1], step):
        parts.append(session.push_timeline(day.minutes[:, t:t + step], start_minute=t))
        if on_push:
            on_push(parts[-1].minutes)
    return _join_minutes(parts)


def _join_minutes(parts: list[Timeline]) -> Timeline:
    """Consecutive timelines of the same instruments → one; the halt state is the last part's."""
    first = parts[0]
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=1)  # noqa: E731
    return Timeline(first.first_minute, *(cat(n) for n in (
        "action_logits", "action", "confidence", "quantity", "q_halt", "q_continue", "halted")),
        parts[-1].halt_minute)
