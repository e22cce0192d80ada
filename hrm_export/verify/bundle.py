"""`verify_bundle`: the PyTorch reference vs a candidate engine on the same feeds, judged against budgets.

Order (Polygraphy's separation): check the bundle and every feed shape before anything runs; then each case
runs on both engines before it is judged.
Scopes: each module alone (L gets the reference H's γ/β), composed H → FiLM → L → heads, and streaming
(l_step chained over a session, 1 and several minutes at a time, against one l_module pass).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hrm_export.backends.factory import make_backend
from hrm_export.core.backend_registry import check as check_backend
from hrm_export.core.budgets import load_budgets
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Manifest
from hrm_export.core.parity.report import HEAD_SCOPES, Report, judge_decisions, judge_tensors
from hrm_export.core.profiles import Profile, axis_values, check_shapes
from hrm_export.core.session_rule import fit_session
from hrm_export.core.specs import MODULES, module_specs
from hrm_export.verify.feeds import Case, MarketInputs, profile_cases
from hrm_export.verify.run import Runner, RunResult

STREAMING_CHUNKS = {"chunks-of-1": [1], "chunks-mixed": [1, 3, 16, 60, 7]}


def verify_bundle(
    dir: str | Path,
    backend: str = "ort-cpu",
    precision: str = "fp32",
    budgets: str | Path | None = None,
    seed: int = 0,
    n_random: int = 2,
    points: Sequence[dict[str, int]] = (),
    only_profiles: Sequence[str] = (),
    streaming: bool = True,
    save_inputs: str | Path | None = None,
    save_outputs: str | Path | None = None,
    save_module: str = "l_module",
    intra_op_threads: int = 0,
    device: str | None = None,
    compile: bool = False,
    cuda_graphs: bool = False,
    on_step: Callable[[str], None] | None = None,
    trust: str | Path | None = None,
) -> Report:
    """Verify the bundle's `precision` artifacts on `backend` against the fp32 PyTorch reference (on the CPU).
    `only_profiles`: take the min/opt/max/random points of these profiles only (default: every profile).
    `device`, `compile`, `cuda_graphs`: how a torch candidate runs (the GPU path: bf16, torch.compile, graphs).
    `trust`: the public key the bundle must be signed with (core/signing.py), checked before anything is read."""
    from hrm_export.backends.torch_backend import TorchBackend
    from hrm_export.core.reference import reference_from_manifest

    t0 = time.perf_counter()
    manifest = Manifest.load(dir, trust=trust)
    budget_file = load_budgets(budgets)
    budget_file.require(precision)
    decision_budget = budget_file.decision(precision)
    check_backend(backend, precision, manifest, device)  # before minutes of work: one line if it cannot run
    if save_module not in MODULES:
        raise UserError(f"--save-module {save_module!r}", hint=f"use one of {list(MODULES)}")
    manifest.verify_hashes()
    cfg = manifest.config
    profiles = [Profile.from_dict(p) for p in manifest.profiles.values()]
    unknown = sorted(set(only_profiles) - {p.name for p in profiles})
    if unknown:
        raise UserError(f"profile(s) {unknown} are not in the bundle",
                        hint=f"the bundle was exported with {', '.join(p.name for p in profiles)}")
    chosen = [p for p in profiles if not only_profiles or p.name in only_profiles]
    cases = profile_cases(chosen, cfg, seed, n_random)
    cases += [_user_case(p, profiles, cfg) for p in points]
    _check_all_shapes(cases, profiles, cfg)  # refuse before anything runs

    model = reference_from_manifest(manifest)  # checks the checkpoint's sha256
    inputs = MarketInputs(cfg, seed)
    ref = TorchBackend(model, "fp32", "cpu")
    # hashes were checked once for the whole bundle; no ORT arena: verify's shapes range over 3 orders of size
    cand = make_backend(backend, manifest, precision, device, compile=compile, cuda_graphs=cuda_graphs,
                        intra_op_threads=intra_op_threads, memory_arena=False, model=model)
    step = on_step or (lambda _: None)
    rows, heads, saved = [], [], []
    with ref, cand:
        runner = Runner(ref, cand, cfg, inputs)
        for result in _run_all(runner, cases, streaming, step):
            # Each case has fully run on both engines before it is judged; its big tensors (a batch-128 K/V
            # cache is 1 GB) are dropped right after, so memory stays bounded by one case.
            if result.scope == save_module and (save_inputs or save_outputs):
                saved.append(result)
            else:
                result.feeds = {}  # judging needs outputs only
            rows += judge_tensors(result, budget_file, precision)
            if result.scope in HEAD_SCOPES:
                heads.append(result.heads_only())
            del result
    decision, decision_failures = judge_decisions(heads, decision_budget)
    if saved:
        from hrm_export.verify import polygraphy_io

        if save_inputs:
            polygraphy_io.save_inputs(saved, save_inputs)
        if save_outputs:
            polygraphy_io.save_outputs(saved, save_outputs)
    meta = {
        "bundle": str(manifest.dir), "backend": backend, "engine": cand.describe(), "precision": precision,
        "reference": "torch/fp32@cpu",
        "checkpoint": manifest.checkpoint, "budgets": str(budget_file.path), "inputs": inputs.source, "seed": seed,
        "cases": [{"label": c.label, **c.axes} for c in cases], "streaming": list(STREAMING_CHUNKS) if streaming
        else [], "elapsed_s": time.perf_counter() - t0,
    }
    return Report(meta, rows, decision, decision_budget, decision_failures)


def _run_all(runner: Runner, cases: list[Case], streaming: bool, step) -> Iterator[RunResult]:
    for case in cases:
        for module in MODULES:
            step(f"{module} @ {case.label}")
            yield runner.run_module(module, case)
        step(f"composed @ {case.label}")
        yield runner.run_composed(case)
    if streaming:
        for label, chunks in STREAMING_CHUNKS.items():
            step(f"streaming {label}")
            yield runner.run_streaming(batch=2, chunks=chunks, label=label)
            if runner.has_static_step():  # the same session through the fixed-capacity cache (l_step_static)
                step(f"streaming {label} static cache")
                yield runner.run_streaming(batch=2, chunks=chunks, label=f"{label} static cache", static=True)


def _user_case(point: dict[str, int], profiles: list[Profile], cfg) -> Case:
    """A point given on the command line; unspecified axes take the first profile's opt value."""
    unknown = set(point) - set(profiles[0].axes)
    if unknown:
        raise UserError(f"unknown axes {sorted(unknown)} in --point", hint=f"axes: {list(profiles[0].axes)}")
    full = {**profiles[0].point("opt"), **point}
    if "past_minutes" not in point:  # keep the session rule for the axes the user did not pin
        full = fit_session(full, cfg.max_minutes, prefer_past=False)
    return Case("point:" + ",".join(f"{k}={v}" for k, v in point.items()), tuple(sorted(full.items())))


def _check_all_shapes(cases: list[Case], profiles: list[Profile], cfg) -> None:
    specs = module_specs(cfg)
    for case in cases:
        a = case.axes
        for module, spec in specs.items():
            sizes = {**a, "total_minutes": a["past_minutes"] + a["new_minutes"]}
            shapes = {t.name: tuple(d if isinstance(d, int) else sizes[d] for d in t.axes) for t in spec.inputs}
            axis_values(module, shapes, cfg)  # model limits first: they name the fix
            check_shapes(profiles, module, shapes, cfg)
