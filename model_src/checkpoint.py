"""Checkpoints: one safetensors file whose metadata carries the HRMConfig as JSON.

Loading never unpickles: a torch pickle (`.pt` zip or raw pickle) is refused with the conversion to use,
and missing / unexpected / mis-shaped keys are named. A config that describes no model (a negative size), a
float weight stored as an integer type (its fractions would be truncated away) and a weight holding NaN or
Inf (every output would be NaN) are each refused in one line naming the field or the tensor.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from model_src.atomic import atomic_output
from model_src.config import HRMConfig
from model_src.errors import CheckpointError
from model_src.model import HRM

FORMAT = "hrm-export/checkpoint-v1"
# The built-in default model (see docs/training.md for how it was trained).
DEFAULT_CHECKPOINT = Path(__file__).parent / "weights" / "hrm-default.safetensors"


def save_checkpoint(
    model: HRM, path: str | Path, dtype: torch.dtype = torch.float32, extra: dict | None = None
) -> Path:
    """Write `model` to `path` (.safetensors) with its config (and `extra` JSON-able metadata), atomically."""
    path = Path(path)
    if not dtype.is_floating_point:
        raise CheckpointError(f"{path}: weights saved as {dtype} would be truncated; save them as torch.float32 or "
                              "torch.bfloat16")
    tensors = {k: v.detach().to(dtype).contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "hrm_config": model.cfg.to_json(), "dtype": str(dtype).removeprefix("torch.")}
    if extra:
        meta["extra"] = json.dumps(extra, sort_keys=True)
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def _refuse_non_safetensors(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(16)
    # A safetensors file starts with its little-endian u64 header length, then '{'. Check that first: a
    # header length whose low byte is 0x80 would otherwise look like a pickle's PROTO opcode.
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= path.stat().st_size:
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        raise CheckpointError(
            f"{path}: refusing to unpickle a torch checkpoint (pickles can run code); convert it where you trust "
            "it: `python -m model_src.checkpoint convert IN.pt OUT.safetensors`"
        )
    if len(head) < 9:
        raise CheckpointError(f"{path}: file is {len(head)} bytes, too short to be a safetensors checkpoint")
    raise CheckpointError(f"{path}: not a safetensors file (bad header); pass a .safetensors checkpoint")


def read_config(path: str | Path) -> HRMConfig:
    """The HRMConfig stored in a checkpoint (its metadata, or a config.json beside it)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass --checkpoint PATH.safetensors")
    _refuse_non_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except SafetensorError as e:  # a header that parses but lies (truncated file, offsets past its end)
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]}); pass a "
                              ".safetensors checkpoint written by save_checkpoint") from None
    if "hrm_config" in meta:
        return _config(meta["hrm_config"], f"{path} (its hrm_config metadata)")
    sidecar = path.with_name("config.json")
    if sidecar.is_file():
        return _config(sidecar.read_text(), str(sidecar))
    raise CheckpointError(
        f"{path}: no HRM config in the metadata and no config.json beside it; save it with save_checkpoint"
    )


def _config(text: str, where: str) -> HRMConfig:
    try:
        return HRMConfig.from_dict(json.loads(text))
    except ValueError as e:  # JSONDecodeError and ConfigError are ValueErrors
        raise CheckpointError(f"{where}: invalid model config: {e}; fix: re-save the checkpoint from a model "
                              "built with a valid HRMConfig") from None


def check_weights(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse a weight stored as an integer type where the model has floats (the fractions were truncated when
    it was written) and a weight holding NaN or Inf (every output computed from it would be NaN), naming it."""
    for name, want in expected.items():
        got = found[name]
        if want.is_floating_point() and not got.is_floating_point():
            raise CheckpointError(f"{path}: tensor {name!r} is stored as {got.dtype}, the model's weights are "
                                  f"floats (an integer copy has lost their fractions); fix: re-save it with "
                                  f"save_checkpoint(model, path, dtype=torch.float32)")
        if got.is_floating_point():
            bad = ~torch.isfinite(got)
            if bool(bad.any()):
                first = tuple(int(i) for i in bad.nonzero()[0])
                raise CheckpointError(f"{path}: tensor {name!r} holds {int(bad.sum())} non-finite value(s) (the first, "
                                      f"{got[first].item()}, at index {first}); no decision can come from it: fix: "
                                      f"use an earlier checkpoint, or find where training diverged")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> HRM:
    """Build the HRM of the checkpoint's config and load its weights (upcast to fp32), strictly."""
    path = Path(path)
    cfg = read_config(path)
    model = HRM(cfg)
    expected = model.state_dict()
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            found = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    except SafetensorError as e:
        raise CheckpointError(f"{path}: unreadable tensors ({str(e).splitlines()[0]}); fix: copy the checkpoint "
                              "again, it is truncated or corrupt") from None
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshaped = [f"{k} {tuple(found[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                 if k in found and found[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' …' if len(missing) > 5 else ''} ({len(missing)})")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:5]}{' …' if len(unexpected) > 5 else ''} ({len(unexpected)})")
    if misshaped:
        problems.append(f"mis-shaped {misshaped[:3]}{' …' if len(misshaped) > 3 else ''} ({len(misshaped)})")
    if problems:
        raise CheckpointError(f"{path}: does not match its config: {'; '.join(problems)}; re-save it from the model")
    check_weights(found, expected, path)
    model.load_state_dict({k: v.float() for k, v in found.items()})
    return model.to(device).eval()


def checkpoint_metadata(path: str | Path) -> dict:
    """The checkpoint's `extra` metadata (training provenance), {} when absent."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("extra", "{}"))


def _convert(src: str, dst: str) -> None:
    """Convert a *trusted* torch state_dict pickle to a safetensors checkpoint (weights_only=True)."""
    state = torch.load(src, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    cfg = HRMConfig.from_dict(state.pop("hrm_config", {}))  # none stored: the default sizes of a pickle's time
    model = HRM(cfg)
    model.load_state_dict(state)
    save_checkpoint(model, dst)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "convert":
        sys.exit("usage: python -m model_src.checkpoint convert IN.pt OUT.safetensors")
    _convert(sys.argv[2], sys.argv[3])
