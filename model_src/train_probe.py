"""Cheap checks of the synthetic market before any long training: how much does the daily book decide?

    python -m model_src.train_probe --days 1500 --seed 3
    python -m model_src.train_probe --phases CKPT [CKPT ...]     # a trained model's accuracy by leg phase

Bayes oracles: per-minute lookup tables, fitted on the first 70 % of days and scored on the rest, over what
the generator knows (model_src.synthetic.simulate_market). The target is the 30-minute action label of
model_src.labels relative to the leg's impulse direction d (with d / flat / against d):
- minutes: the leg minute, whether the label's horizon is cut by the close, and the current leg's outcome
  once its step has begun (all visible in the session);
- + bit: the bit that governs the leg, read from the day tokens (what FiLM can carry);
- + same-parity evidence: how many earlier legs of the session governed by the same bit followed through,
  minus how many faded (the most an L-module could learn about the bit from the session itself).
MLP probes: a small MLP on one minute's tokens (and its leg minute), with and without the leg's bit, the way
the trained model sees them. Both print held-out accuracy next to the majority class.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from model_src.labels import LabelConfig, session_labels
from model_src.synthetic import LEG, STEP_AT, simulate_market


def _lookup_accuracy(keys: list[tuple[np.ndarray, int]], target: np.ndarray, train: np.ndarray) -> float:
    """Held-out accuracy of the majority target per cell of the joint key (a Bayes classifier on the keys)."""
    key = np.zeros(target.shape, np.int64)
    for k, n in keys:
        key = key * n + k
    table = np.zeros((int(key.max()) + 1, 3))
    np.add.at(table, (key[train].ravel(), target[train].ravel()), 1)
    return float((table.argmax(1)[key] == target)[~train].mean())


def oracles(n_days: int, seed: int) -> dict[str, float]:
    m, bars = simulate_market(n_days, seed)
    D, T = bars["close"].shape
    labels = np.stack([session_labels(c, LabelConfig())[0] for c in bars["close"]])  # (D, T)
    relative = np.where(m.direction > 0, labels, 2 - labels)  # 2: along d, 0: against d
    leg_minute = np.broadcast_to(np.arange(T) % LEG, (D, T))
    cut = np.broadcast_to((np.arange(T) > T - 1 - LabelConfig().horizon).astype(int), (D, T))
    outcome = np.where(leg_minute >= STEP_AT, m.follows.astype(int) + 1, 1)  # 0 fade, 2 follow, 1 not yet
    odd = (np.arange(T) // LEG) % 2 == 1
    bit = np.where(odd[None], m.up[:, None], m.trending[:, None]).astype(int)  # (D, T)
    evidence = np.zeros((D, T), np.int64)
    for k in range(2, -(-T // LEG)):  # legs 2..5: the earlier legs of the same parity share their bit
        same = [j * LEG for j in range(k % 2, k, 2)]
        evidence[:, k * LEG : (k + 1) * LEG] = m.follows[:, same].astype(np.int64).sum(1, keepdims=True)
    evidence = np.clip(evidence, -3, 3) + 3
    train = np.broadcast_to((np.arange(D) < int(0.7 * D))[:, None], (D, T))
    base = [(leg_minute, LEG), (cut, 2), (outcome, 3)]
    majority = np.bincount(labels[train].ravel(), minlength=3).argmax()
    return {
        "majority class": float((labels[~train] == majority).mean()),
        "oracle: minutes": _lookup_accuracy(base, relative, train),
        "oracle: minutes + same-parity evidence (ideal L-module alone)": _lookup_accuracy(
            base + [(evidence, 7)], relative, train),
        "oracle: minutes + bit (H + L)": _lookup_accuracy(base + [(bit, 2)], relative, train),
    }


def heldout_accuracy(x: torch.Tensor, y: torch.Tensor, n_train: int, hidden: int = 128, epochs: int = 4,
                     lr: float = 1e-3, seed: int = 0) -> float:
    """A two-hidden-layer MLP fitted per minute on the first n_train days of x (N, T, F) → y (N, T) classes;
    its accuracy on the other days."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[-1], hidden), torch.nn.GELU(), torch.nn.Linear(hidden, hidden),
                              torch.nn.GELU(), torch.nn.Linear(hidden, int(y.max()) + 1))
    opt = torch.optim.Adam(net.parameters(), lr)
    xtr, ytr = x[:n_train].reshape(-1, x.shape[-1]), y[:n_train].reshape(-1)
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr)).split(512):
            loss = torch.nn.functional.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((net(x[n_train:]).argmax(-1) == y[n_train:]).float().mean())


def mlp_probes(n_days: int, seed: int, hidden: int = 128) -> dict[str, float]:
    """Held-out accuracy of an MLP on one minute's tokens and leg minute, then also the leg's bit (read from
    the day tokens, as the H-module would), on the action labels; 70 % of the days train."""
    from model_src.data import build_samples
    from model_src.features import DAY_FEATURES
    from model_src.synthetic import TREND_CUT, synthetic_market

    samples = build_samples(*synthetic_market(n_days, seed), lookback=8)
    x = torch.from_numpy(np.stack([s.minutes for s in samples]))  # (N, T, 11)
    N, T, _ = x.shape
    ret5 = torch.tensor([float(s.days[-1, DAY_FEATURES.index("ret5")]) for s in samples])
    odd = (torch.arange(T) // LEG) % 2 == 1
    bit = torch.where(odd[None], (ret5 > 0)[:, None], (ret5.abs() >= TREND_CUT)[:, None]).float()  # (N, T)
    phase = (torch.arange(T) % LEG / LEG).float()[None, :, None].expand(N, T, 1)
    y = torch.from_numpy(np.stack([session_labels(s.minute_close, LabelConfig())[0] for s in samples]))
    n = int(0.7 * N)
    tokens = torch.cat([x, phase], -1)
    return {
        "MLP: majority class": float((y[n:] == torch.bincount(y[:n].reshape(-1)).argmax()).float().mean()),
        "MLP: one minute's tokens + leg minute": heldout_accuracy(tokens, y, n, hidden),
        "MLP: ... + the leg's bit": heldout_accuracy(torch.cat([tokens, bit[..., None] * 2 - 1], -1), y, n, hidden),
    }


PHASES = {"impulse": (0, 3), "pause": (3, 30), "step": (30, 33), "hold": (33, LEG)}  # leg minutes, half-open


@torch.no_grad()
def phase_accuracy(path: str, batch_size: int = 4) -> dict[str, float]:
    """Validation accuracy of a checkpoint (whole sessions, fp32, its own validation split) by leg phase."""
    from model_src.checkpoint import checkpoint_metadata, load_checkpoint
    from model_src.train_data import DataSpec, DayTensors, load_samples, split_by_date

    meta, model = checkpoint_metadata(path), load_checkpoint(path)
    spec = DataSpec(**meta["data"])
    data = DayTensors(split_by_date(load_samples(spec), spec.val_fraction)[1], LabelConfig(**meta["labels"]))
    right = []
    for k in range(0, len(data), batch_size):
        days, minutes = data.days[k : k + batch_size], data.minutes[k : k + batch_size]
        logits = model.l(minutes, *model.h(days)[1:])[0]  # (B, T, 3)
        right.append(logits.argmax(-1) == data.action[k : k + batch_size])
    right = torch.cat(right).float()  # (N, T); synthetic sessions have no padding
    leg_minute = torch.arange(right.shape[1]) % LEG
    out = {"all": float(right.mean())}
    for name, (lo, hi) in PHASES.items():
        out[name] = float(right[:, (leg_minute >= lo) & (leg_minute < hi)].mean())
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m model_src.train_probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=1500, help="synthetic days for the oracles (MLP: half as many)")
    p.add_argument("--seed", type=int, default=3, help="market seed")
    p.add_argument("--phases", nargs="+", metavar="CKPT", help="instead: validation accuracy of trained checkpoints "
                   "by leg phase (impulse, pause, step, hold)")
    args = p.parse_args(argv)
    if args.phases:
        for path in args.phases:
            print(path, "  ".join(f"{k} {v:.3f}" for k, v in phase_accuracy(path).items()))
        return
    torch.set_num_threads(1)  # small matmuls: more threads only wait on each other on a shared machine
    rows = {**oracles(args.days, args.seed), **mlp_probes(args.days // 2, args.seed)}
    rows.pop("MLP: majority class")  # the oracles' days hold it already
    width = max(map(len, rows))
    for name, acc in rows.items():
        print(f"{name:<{width}}  {acc:.3f}")


if __name__ == "__main__":
    main()
