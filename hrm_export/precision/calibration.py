"""Calibration feeds from real activations, saved as an npz cache.

INT8 ranges are only as good as the activations they are measured on. So:
* h_module is fed the `days` of real sample days (model_src.data: synthetic market or real bars);
* l_module is fed those days' minutes with the γ/β (and h_tokens) that the fp32 H-module graph *computes for the
  same days* — never random γ/β: FiLM moves every L activation, so random γ/β would calibrate another model;
* l_step is fed each whole session from an empty cache, so its layers see what l_module's see at every minute.
The cache (npz) keys are "<module>/<input name>", one row per sample day; `meta/*` records where it came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hrm_export.core.composed import film_feeds
from hrm_export.core.errors import UserError
from hrm_export.core.ort_session import onnx_infer
from hrm_export.core.specs import kv_shape
from model_src.atomic import atomic_output


@dataclass
class Calibration:
    feeds: dict[str, dict[str, np.ndarray]]  # module -> input name -> (N, ...) stacked rows
    meta: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.feeds["h_module"]["days"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        flat = {f"{m}/{k}": v for m, f in self.feeds.items() for k, v in f.items()}
        flat.update({f"meta/{k}": v for k, v in self.meta.items()})
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **flat)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        if not path.exists():
            raise UserError(f"calibration cache {path} does not exist", hint="omit --calibration-cache to build one")
        feeds: dict[str, dict[str, np.ndarray]] = {}
        meta: dict[str, np.ndarray] = {}
        with np.load(path, allow_pickle=False) as z:  # never unpickle a file from disk
            for key in z.files:
                group, _, name = key.partition("/")
                (meta if group == "meta" else feeds.setdefault(group, {}))[name] = z[key]
        if "h_module" not in feeds or "l_module" not in feeds:
            raise UserError(f"{path} is not a calibration cache (no h_module/l_module feeds)",
                            hint="rebuild it with `hrm-export export --precision int8 --calibration-cache FILE`")
        return cls(feeds, meta)


def build_calibration(fp32_paths: dict[str, Path], cfg, days: np.ndarray, minutes: np.ndarray, seed: int = 0,
                      source: str = "model_src.data.synthetic_samples") -> Calibration:
    """Run the fp32 graphs on the sample days and collect each module's real inputs."""
    infer = onnx_infer(fp32_paths)
    n = len(days)
    h = [infer("h_module", {"days": days[i:i + 1]}) for i in range(n)]  # batch 1: the exported graph, day by day
    cond = film_feeds({k: np.concatenate([o[k] for o in h]) for k in h[0]}, cfg.cross_attention)
    feeds = {"h_module": {"days": days}, "l_module": {"minutes": minutes, **cond}}
    meta = {"source": np.array(source), "seed": np.array(seed), "size": np.array(n)}
    if "l_step" in fp32_paths:
        # Every minute of every session, from an empty cache: the step's Linear layers then see exactly the
        # activations the full pass sees (minute 0's gap, every leg's impulse), so its static scales cover them.
        # (A window of 8 minutes after one cut point missed the session's extremes: on the trained model the
        # step's INT8 logits were off by 0.36 where l_module's were off by 0.12.)
        kv = np.zeros(kv_shape(cfg, n, 0), np.float32)  # (L, 2, n, H, 0, hd)
        feeds["l_step"] = {"minutes": minutes, "past_kv": kv, **cond}
        meta["l_step_cut"] = np.array(0)
    # past_kv is (L, 2, B, H, P, hd): rows are on axis 2, not 0 — move them first for uniform row slicing.
    if "l_step" in feeds:
        feeds["l_step"]["past_kv"] = np.moveaxis(feeds["l_step"]["past_kv"], 2, 0)
    return Calibration(feeds, meta)


def row_feed(cal: Calibration, module: str, i: int) -> dict[str, np.ndarray]:
    """Sample i of a module's calibration feeds, shaped as the graph wants it (batch 1)."""
    out = {}
    for k, v in cal.feeds[module].items():
        out[k] = np.moveaxis(v[i:i + 1], 0, 2) if k == "past_kv" else v[i:i + 1]
    return out


def module_rows(cal: Calibration, module: str, names: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
    names = names or list(cal.feeds[module])
    n = len(next(iter(cal.feeds[module].values())))
    return [{k: v for k, v in row_feed(cal, module, i).items() if k in names} for i in range(n)]
