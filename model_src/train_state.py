"""Training checkpoints without pickles, and the progress log.

A run folder holds model.safetensors (fp32 weights + config, model_src.checkpoint's format),
train_state.safetensors (AdamW moments and step counts, the torch RNG state) and train_state.json (step,
validation history, provenance). The JSON is written last and names the step both files hold, so a run
killed mid-save is detected on --resume instead of silently mixing steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from model_src.atomic import atomic_output, atomic_write_text
from model_src.checkpoint import checkpoint_metadata, load_checkpoint, save_checkpoint
from model_src.errors import CheckpointError


def save_loadable_checkpoint(model, path: Path, dtype: torch.dtype = torch.float32, extra: dict | None = None) -> None:
    """save_checkpoint, re-saved with one padding byte in the metadata when the header length's first byte
    is 0x80: model_src.checkpoint's pickle sniffing would refuse such a file (1 in 256 headers)."""
    extra = dict(extra or {})
    save_checkpoint(model, path, dtype=dtype, extra=extra)
    while _first_byte(path) == b"\x80":
        extra["header_pad"] = extra.get("header_pad", "") + " "
        save_checkpoint(model, path, dtype=dtype, extra=extra)


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(1)


def _params(opt: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for g in opt.param_groups for p in g["params"]]


def save_train_state(out: Path, model, opt, step: int, history: list[dict], provenance: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_loadable_checkpoint(model, out / "model.safetensors", extra={**provenance, "steps": step})
    tensors = {"rng.torch": torch.get_rng_state()}
    for i, p in enumerate(_params(opt)):
        for key, value in opt.state.get(p, {}).items():
            tensors[f"opt.{i}.{key}"] = value.detach().cpu().contiguous()
    with atomic_output(out / "train_state.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(step)})
    atomic_write_text(out / "train_state.json", json.dumps(
        {"step": step, "history": history, "provenance": provenance}, indent=2, sort_keys=True))


def load_train_state(out: Path, model, opt) -> tuple[int, list[dict], dict]:
    """Restore weights, optimizer moments and RNG from `out`; returns (step, validation history, provenance)."""
    meta_path = out / "train_state.json"
    if not meta_path.is_file():
        raise CheckpointError(f"{out}: no train_state.json to resume from; drop --resume or pass the run's --out")
    meta = json.loads(meta_path.read_text())
    step = int(meta["step"])
    if checkpoint_metadata(out / "model.safetensors").get("steps") != step:
        raise CheckpointError(f"{out}: model.safetensors is not from step {step} (interrupted save); rerun the run")
    loaded = load_checkpoint(out / "model.safetensors")
    if loaded.cfg != model.cfg:
        raise CheckpointError(f"{out}: checkpoint config differs from --config/--set; resume with the same options")
    model.load_state_dict(loaded.state_dict())
    state = load_file(str(out / "train_state.safetensors"))
    torch.set_rng_state(state.pop("rng.torch"))
    device = next(model.parameters()).device
    for i, p in enumerate(_params(opt)):
        keys = {k.split(".", 2)[2]: v for k, v in state.items() if k.startswith(f"opt.{i}.")}
        if keys:
            opt.state[p] = {k: (v if k == "step" else v.to(device)) for k, v in keys.items()}
    return step, list(meta["history"]), dict(meta.get("provenance", {}))


class TrainLog:
    """A rich progress bar for people and/or JSON lines for machines (rank 0 only)."""

    def __init__(self, jsonl: str | None, progress: bool, total: int, start: int):
        self.file = None
        if jsonl:
            self.file = sys.stdout if jsonl == "-" else open(jsonl, "a", buffering=1)  # noqa: SIM115
        self.progress = None
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[info]}"), console=console)
            self.task = self.progress.add_task("train", total=total, completed=start, info="")
            self.progress.start()

    def train(self, m: dict) -> None:
        if self.progress:
            self.progress.update(self.task, completed=m["step"],
                                 info=f"loss {m['loss']:.4f}  {m['minutes_per_s']:.0f} min/s")
        self.event({"event": "train", **m})

    def event(self, e: dict) -> None:
        if self.file:
            self.file.write(json.dumps(e) + "\n")
        elif self.progress and e.get("event") == "validation":
            self.progress.console.print(
                f"step {e['step']}: val acc {e['val_accuracy']:.3f} (majority {e['val_majority_baseline']:.3f})")

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
        if self.file and self.file is not sys.stdout:
            self.file.close()
