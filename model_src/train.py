"""Train the HRM with deep supervision: every minute is a decision point (action, quantity, ACT Q-head).

    python -m model_src.train --config tiny --steps 300 --out runs/tiny
    torchrun --nproc_per_node=2 -m model_src.train --config tiny --steps 300 --out runs/ddp
    python -m model_src.train --describe model_src/weights/hrm-default.safetensors

Runs single-process or under torchrun (DistributedDataParallel: gloo on CPU, nccl on GPU); checkpoints
are safetensors (weights + optimizer state) and JSON, never pickles; --resume continues exactly.
See docs/training.md (method, provenance of the default model) and docs/act.md (the ACT targets).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from model_src.config import HRMConfig, tiny_config
from model_src.decisions import halting_minutes
from model_src.errors import CheckpointError, DataError
from model_src.labels import LabelConfig, act_targets
from model_src.layers import film
from model_src.model import HRM
from model_src.train_data import DataSpec, DayTensors, load_samples, split_by_date
from model_src.train_dist import Dist, setup_dist
from model_src.train_state import TrainLog, load_train_state, save_loadable_checkpoint, save_train_state


class WindowForward(nn.Module):
    """HRM over a crop of minutes that keeps each minute's absolute session position.

    `LModule.forward` numbers minutes from 0; a crop starting at minute s must use positions s.. so that
    every position embedding trains and the model sees minute 200 as minute 200. Wrapped by DDP.
    """

    def __init__(self, model: HRM):
        super().__init__()
        self.model = model

    def forward(self, days: Tensor, minutes: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h_tokens, gamma, beta = self.model.h(days)  # (B, D, Ch), (B, Cl), (B, Cl)
        lm = self.model.l
        x = lm.embed(minutes) + lm.pos(positions)  # (B, L, Cl)
        for block in lm.blocks:
            x = checkpoint(block, x, use_reentrant=False) if lm.gradient_checkpointing else block(x)
            x = film(x, gamma, beta)
        logits, quantity, q_values = lm._heads(x, h_tokens if self.model.cfg.cross_attention else None)
        return logits, quantity, q_values, gamma


@dataclasses.dataclass
class Losses:
    total: Tensor
    action: Tensor
    quantity: Tensor
    act: Tensor


def deep_supervision_loss(
    logits: Tensor, quantity: Tensor, q_values: Tensor, batch: dict[str, Tensor], act_weight: float,
    quantity_weight: float, act_discount: float = 0.98,
) -> Losses:
    """Action CE + quantity Huber + ACT BCE (halt and continue), averaged over every valid minute."""
    action = batch["action"]  # (B, L), -100 on padding
    valid = (action >= 0).float()
    n = valid.sum().clamp(min=1)
    ce = F.cross_entropy(logits.float().transpose(1, 2), action, ignore_index=-100)
    qty = (F.smooth_l1_loss(quantity.float()[..., 0], batch["quantity"], reduction="none") * valid).sum() / n
    halt_t, cont_t, cont_m = act_targets(logits, q_values, action, batch["session_end"], act_discount,
                                         batch.get("full_horizon"))
    q = q_values.float()
    halt = (F.binary_cross_entropy_with_logits(q[..., 0], halt_t, reduction="none") * valid).sum() / n
    cont = (F.binary_cross_entropy_with_logits(q[..., 1], cont_t, reduction="none") * cont_m).sum()
    cont = cont / cont_m.sum().clamp(min=1)
    act = 0.5 * (halt + cont)
    return Losses(ce + quantity_weight * qty + act_weight * act, ce, qty, act)


def lr_at(step: int, args) -> float:
    """Linear warm-up, then cosine down to min_lr_ratio·lr."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def autocast(device: torch.device, amp: str):
    enabled = amp == "bf16" or (amp == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def evaluate(model: HRM, data: DayTensors, dist: Dist, device, amp: str, batch_size: int) -> dict:
    """Whole-session validation, sharded over ranks, sums all-reduced: accuracy, losses, halting."""
    model.eval()
    fwd = WindowForward(model)
    mine = list(range(dist.rank, len(data), dist.world))
    sums = torch.zeros(6, dtype=torch.float64)  # correct, minutes, ce·minutes, halt_correct, sessions, halt_min
    g_sums = torch.zeros(2, model.cfg.l_dim, dtype=torch.float64)  # Σγ, Σγ² over days: is FiLM alive?
    for k in range(0, len(mine), batch_size):
        b = {key: v.to(device) for key, v in data.full(mine[k : k + batch_size]).items()}
        with autocast(device, amp):
            logits, _, q_values, gamma = fwd(b["days"], b["minutes"], b["positions"])
        g = gamma.detach().double().cpu()  # (B, Cl)
        g_sums += torch.stack([g.sum(0), (g * g).sum(0)])
        valid = b["action"] >= 0
        pred = logits.float().argmax(-1)
        ce = F.cross_entropy(logits.float().transpose(1, 2), b["action"], ignore_index=-100, reduction="sum")
        lengths = valid.sum(1)  # (B,) minutes of each session: its close is minute length - 1
        halt_at = torch.from_numpy(halting_minutes(q_values.float().cpu().numpy(), lengths.cpu().numpy())).to(device)
        rows = torch.arange(len(halt_at), device=device)
        sums += torch.tensor([
            (pred == b["action"])[valid].sum().item(), valid.sum().item(), ce.item(),
            (pred[rows, halt_at] == b["action"][rows, halt_at]).sum().item(), len(halt_at), halt_at.sum().item(),
        ], dtype=torch.float64)
    sums, g_sums = dist.all_reduce_sum(sums), dist.all_reduce_sum(g_sums)
    model.train()
    counts = data.class_counts().double()
    days = max(1, len(data))
    gamma_std = (g_sums[1] / days - (g_sums[0] / days) ** 2).clamp(min=0).sqrt().mean().item()
    return {
        "val_accuracy": sums[0].item() / max(1, sums[1].item()),
        "val_ce": sums[2].item() / max(1, sums[1].item()),
        "val_halt_accuracy": sums[3].item() / max(1, sums[4].item()),
        "val_mean_halt_minute": sums[5].item() / max(1, sums[4].item()),
        "val_majority_baseline": (counts.max() / counts.sum()).item(),
        "val_film_gamma_std": gamma_std,  # FiLM γ's std across validation days, mean over channels
    }


def param_fingerprint(model: nn.Module) -> str:
    import hashlib

    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _init_provenance(path: str | None) -> dict:
    """How the --init checkpoint was made (its own provenance, without its nested history)."""
    if not path:
        return {}
    from model_src.checkpoint import checkpoint_metadata

    return {k: v for k, v in checkpoint_metadata(path).items() if k != "init_provenance"}


def _earlier_commands(provenance: dict) -> list[str]:
    """The commands of a resumed run's earlier invocations (runs saved before `commands` existed: their last)."""
    if "commands" in provenance:
        return list(provenance["commands"])
    return [provenance["command"]] if provenance.get("command") else []


def build_config(args) -> HRMConfig:
    cfg = tiny_config() if args.config == "tiny" else HRMConfig()
    for item in args.set or []:
        key, _, value = item.partition("=")
        fields = {f.name: f.type for f in dataclasses.fields(HRMConfig)}
        if key not in fields:
            sys.exit(f"--set {item}: unknown HRMConfig field {key!r}; known: {sorted(fields)}")
        current = getattr(cfg, key)
        parsed = value.lower() in ("1", "true", "yes") if isinstance(current, bool) else type(current)(value)
        cfg = dataclasses.replace(cfg, **{key: parsed})
    return cfg


def train(args) -> dict:
    dist = setup_dist()
    device = dist.device
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_config(args)
    lookback = args.lookback or cfg.max_days
    if not 0 <= args.min_lookback <= lookback:
        raise DataError(f"--min-lookback {args.min_lookback} must be between 1 and the look-back {lookback} (0: off)")
    if lookback > cfg.max_days:
        raise DataError(f"--lookback {lookback} exceeds the model's max_days {cfg.max_days}; lower it or "
                        f"--set max_days={lookback}")
    spec = DataSpec(args.data, args.days, args.data_seed, args.daily_bars or "", args.minute_bars or "",
                    lookback, args.val_fraction, args.tz)
    labels = LabelConfig(args.horizon, args.band, args.quantity_scale)
    train_days, val_days = split_by_date(load_samples(spec), spec.val_fraction)
    train_set, val_set = DayTensors(train_days, labels), DayTensors(val_days, labels)
    if args.val_days:
        val_set = DayTensors(val_days[: args.val_days], labels)

    torch.manual_seed(args.seed)
    model = HRM(cfg).to(device)
    model.l.gradient_checkpointing = args.grad_checkpointing
    if args.init:  # start from a trained checkpoint (a second phase), fresh optimizer and schedule
        from model_src.checkpoint import load_checkpoint

        model.load_state_dict(load_checkpoint(args.init).state_dict())
    for name, p in model.named_parameters():  # --train-only: freeze all but the named parts
        p.requires_grad_(not args.train_only or name.startswith(tuple(args.train_only)))
    if args.ablation_twin and not (args.export and Path(args.ablation_twin).is_file()):
        raise CheckpointError(f"--ablation-twin {args.ablation_twin}: needs --export and an existing checkpoint file; "
                              f"pass the twin's exported .safetensors")
    if args.ablate_film:  # the H-ablation twin: γ, β held at zero, so the L-module never hears the daily book
        if cfg.cross_attention:
            sys.exit("error: --ablate-film with cross_attention=True would leave the L→H cross-attention path open; "
                     "train the twin without --set cross_attention=true")
        nn.init.zeros_(model.h.film.proj.weight)  # (it is zero-initialised; an --init checkpoint's is not)
        nn.init.zeros_(model.h.film.proj.bias)
        for p in model.h.parameters():
            p.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim >= 2 and ".pos." not in n]
    no_decay = [p for n, p in trainable if not (p.ndim >= 2 and ".pos." not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))
    step, history, before = 0, [], {}
    out = Path(args.out)
    if args.resume:
        step, history, before = load_train_state(out, model, opt)
        for key, now in (("ablate_film", args.ablate_film), ("train_only", args.train_only or [])):
            if before.get(key, now) != now:  # the optimizer state is stored per trainable parameter
                raise CheckpointError(f"{out}: the run was trained with {key}={before.get(key)!r}, not {now!r}; "
                                      f"resume with the same options")
    fwd = dist.wrap(WindowForward(model))
    sampler = torch.utils.data.DistributedSampler(
        range(len(train_set)), num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=args.seed, drop_last=True
    )
    assert args.batch_size % dist.world == 0, f"--batch-size {args.batch_size} must divide over {dist.world} ranks"
    local_bs = args.batch_size // dist.world
    per_epoch = len(sampler) // local_bs
    assert per_epoch >= 1, f"{len(train_set)} training days cannot fill a batch of {args.batch_size}"

    command = shlex.join(["python", "-m", "model_src.train", *args.argv])
    provenance = {
        "command": command, "commands": [*_earlier_commands(before), command], "seed": args.seed,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "data": dataclasses.asdict(spec), "labels": dataclasses.asdict(labels), "crop_minutes": args.crop,
        "batch_size": args.batch_size, "world_size": dist.world, "train_days": len(train_set),
        "val_days": len(val_set), "amp": args.amp, "machine": args.machine, "act_discount": args.act_discount,
        "init": args.init or "", "train_only": args.train_only or [], "ablate_film": args.ablate_film,
        "min_lookback": args.min_lookback,
        "optim": {k: getattr(args, k) for k in ("lr", "min_lr_ratio", "warmup", "weight_decay", "clip", "act_weight",
                                                 "quantity_weight", "steps")},
        "init_provenance": _init_provenance(args.init),
    }
    wall_before = float(before.get("wall_s", 0.0))  # earlier invocations of a resumed run
    log = TrainLog(args.jsonl if dist.rank == 0 else None, progress=dist.rank == 0 and not args.no_progress,
                   total=args.steps, start=step)
    t0, tokens, metrics, start_step = time.time(), 0, {}, step
    epoch_indices, epoch_of = None, -1
    while step < args.steps:
        if args.time_budget and time.time() - t0 > args.time_budget * 60:
            log.event({"event": "time_budget_reached", "step": step})
            break
        if args.stop_after and step >= start_step + args.stop_after:
            break
        epoch, pos = divmod(step, per_epoch)
        if epoch != epoch_of:
            sampler.set_epoch(epoch)
            epoch_indices, epoch_of = list(sampler), epoch
        idx = epoch_indices[pos * local_bs : (pos + 1) * local_bs]
        batch = train_set.window(idx, train_set.crop_starts(idx, args.crop, args.seed, epoch), args.crop)
        if args.min_lookback:  # this step's look-back: the latest D days, D a function of (seed, step) only
            D = int(np.random.default_rng([args.seed, step]).integers(args.min_lookback, lookback + 1))
            batch["days"] = batch["days"][:, -D:]
        batch = {k: v.to(device) for k, v in batch.items()}
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        with autocast(device, args.amp):
            logits, quantity, q_values, _ = fwd(batch["days"], batch["minutes"], batch["positions"])
        losses = deep_supervision_loss(logits, quantity, q_values, batch, args.act_weight, args.quantity_weight,
                                       args.act_discount)
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], args.clip)
        opt.step()
        step += 1
        tokens += int((batch["action"] >= 0).sum()) * dist.world
        if step % args.log_every == 0 or step == args.steps:
            vals = dist.all_reduce_mean(torch.stack([losses.total, losses.action, losses.quantity, losses.act]))
            metrics = {"step": step, "loss": vals[0].item(), "action_ce": vals[1].item(), "quantity": vals[2].item(),
                       "act": vals[3].item(), "lr": lr_at(step - 1, args), "grad_norm": float(grad_norm),
                       "minutes_per_s": tokens / max(1e-9, time.time() - t0), "elapsed_s": time.time() - t0}
            log.train(metrics)
        if step % args.eval_every == 0 or step == args.steps:
            ev = evaluate(model, val_set, dist, device, args.amp, args.eval_batch)
            history.append({"step": step, **ev})
            log.event({"event": "validation", "step": step, **ev})
            if dist.rank == 0:
                save_train_state(out, model, opt, step, history,
                                 {**provenance, "last": metrics, "wall_s": round(wall_before + time.time() - t0, 1)})
    fingerprints = dist.all_gather_str(param_fingerprint(model))
    final = {"event": "done", "step": step, "wall_s": time.time() - t0, "param_fingerprints": fingerprints,
             **(history[-1] if history else {})}
    if dist.rank == 0:
        wall_s = round(wall_before + time.time() - t0, 1)
        if not history or history[-1]["step"] != step:
            save_train_state(out, model, opt, step, history, {**provenance, "last": metrics, "wall_s": wall_s})
        if args.export:
            extra = {**provenance, "steps": step, "wall_s": wall_s, "final_validation": history[-1] if history else {}}
            save_loadable_checkpoint(model, args.export, dtype=torch.bfloat16, extra=extra)
            if args.ablation_twin:  # measured on the weights as exported (bf16), like the twin's own export
                from model_src.checkpoint import load_checkpoint
                from model_src.train_conditioning import h_ablation_gap

                val_all = DayTensors(val_days, labels)  # every validation day, whatever --val-days
                gap = h_ablation_gap(load_checkpoint(args.export), extra, args.ablation_twin, val_all)
                save_loadable_checkpoint(model, args.export, dtype=torch.bfloat16, extra={**extra, "h_ablation": gap})
                final["h_ablation"] = gap
            final["exported"] = str(args.export)
    log.event(final)
    log.close()
    dist.close()
    return final


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model_src.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--describe", metavar="CKPT", help="print the health stats of a checkpoint (see docs/training.md) and exit")
    a("--json", action="store_true", help="with --describe: one JSON object instead of tables")
    a("--config", choices=["tiny", "default"], default="tiny", help="model size (default: tiny)")
    a("--set", action="append", metavar="FIELD=VALUE", help="override an HRMConfig field, e.g. --set l_layers=3")
    a("--data", choices=["synthetic", "bars"], default="synthetic", help="synthetic market or OHLCV bar files")
    a("--days", type=int, default=400, help="synthetic trading days (default 400)")
    a("--data-seed", type=int, default=0, help="seed of the synthetic market")
    a("--daily-bars", help="daily OHLCV file (with --data bars)")
    a("--minute-bars", help="minute OHLCV file (with --data bars)")
    a("--tz", default="", help="time zone of naive timestamps in the bar files, e.g. America/New_York (with --data "
      "bars; timestamps that carry a zone need none)")
    a("--lookback", type=int, default=0, help="days of look-back per sample (0: the config's max_days)")
    a("--min-lookback", type=int, default=0, help="train each step on the latest D days, D uniform in "
      "[N, look-back] (0: always the whole look-back; validation always uses it)")
    a("--val-fraction", type=float, default=0.15, help="last fraction of dates held out (default 0.15)")
    a("--val-days", type=int, default=0, help="evaluate on the first N validation days only (0: all)")
    a("--horizon", type=int, default=30, help="label horizon in minutes (default 30)")
    a("--band", type=float, default=1e-3, help="flat band on the forward log-return (default 1e-3 = 10 bp)")
    a("--quantity-scale", type=float, default=2e-3, help="|return| that maps to quantity 1 (default 2e-3)")
    a("--steps", type=int, default=300)
    a("--batch-size", type=int, default=16, help="global batch (days), split over ranks")
    a("--crop", type=int, default=96, help="minutes per training window (default 96)")
    a("--lr", type=float, default=1e-3)
    a("--min-lr-ratio", type=float, default=0.1)
    a("--warmup", type=int, default=30)
    a("--weight-decay", type=float, default=0.05)
    a("--clip", type=float, default=1.0, help="gradient-norm clip")
    a("--act-weight", type=float, default=0.5)
    a("--quantity-weight", type=float, default=0.5)
    a("--act-discount", type=float, default=0.98, help="per-minute discount of the ACT continue target")
    a("--ablate-film", action="store_true", help="hold FiLM γ, β at zero (the H-ablation twin of a run; "
      "docs/training.md)")
    a("--ablation-twin", metavar="CKPT", help="the --ablate-film twin's exported checkpoint: with --export, record the "
      "H-ablation gap in the metadata; with --describe, measure it")
    a("--init", metavar="CKPT", help="start from this checkpoint's weights (fresh optimizer and schedule)")
    a("--train-only", action="append", metavar="PREFIX", help="train only parameters named PREFIX* (repeatable)")
    a("--seed", type=int, default=0)
    a("--amp", choices=["auto", "bf16", "off"], default="auto", help="bf16 autocast: auto = on CUDA only")
    a("--grad-checkpointing", action="store_true", help="recompute L-blocks in backward (less memory)")
    a("--threads", type=int, default=0, help="torch CPU threads per process (0: torch's default)")
    a("--eval-every", type=int, default=100)
    a("--eval-batch", type=int, default=8)
    a("--log-every", type=int, default=10)
    a("--time-budget", type=float, default=0, help="stop (and checkpoint) after this many minutes (0: none)")
    a("--stop-after", type=int, default=0, help="stop (and checkpoint) after N steps of this invocation")
    a("--out", default="runs/train", help="checkpoint folder: model.safetensors + train_state.*")
    a("--resume", action="store_true", help="continue from --out's checkpoint")
    a("--export", help="also write the final weights as a bf16 checkpoint with provenance here")
    a("--machine", default="", help="free text recorded in the provenance, e.g. '2-core CPU'")
    a("--jsonl", help="write JSON lines of progress to FILE ('-' for stdout)")
    a("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in the provenance
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.describe:
            from model_src.train_health import describe

            describe(args.describe, as_json=args.json, twin=args.ablation_twin)
            return
        train(args)
    except (DataError, CheckpointError) as e:  # bad input: one line naming the fix, not a traceback
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
