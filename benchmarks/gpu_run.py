"""The Python steps of benchmarks/run_gpu.sh: the environment record, a manifest-only bundle when export cannot
run, and the closing summary. The summary reads only the files the steps wrote (standard library alone), so it
still writes results.md when a step or an import failed.

    python benchmarks/gpu_run.py environment --device cuda        # JSON on stdout
    python benchmarks/gpu_run.py manifest-only DIR [--checkpoint CKPT]
    python benchmarks/gpu_run.py summary WORK OUT --seconds N     # exit code: 0 ok, 3 a gate failed, 1 a step failed
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

FILES_BACK = 8  # the lent machines return at most 8 files from the results folder


def environment(device: str) -> dict:
    """The bench's machine record (hrm_export.core.machine) plus what this run depends on: package versions and the
    TensorRT library this machine would run plans with, and how it answers."""
    import importlib.metadata as md

    from hrm_export.core.machine import machine_record

    record = machine_record(device)
    for dist in ("onnxscript", "pydantic", "numpy", "matplotlib", "tensorrt_lean_cu13", "polygraphy"):
        try:
            record["versions"][dist] = md.version(dist)
        except md.PackageNotFoundError:
            record["versions"][dist] = None
    record["tensorrt_library"] = tensorrt_probe(device)
    return record


def tensorrt_probe(device: str) -> dict:
    """Which TensorRT library (full or lean) would run plans here, and its one-line answer: the refusal without a
    CUDA device, or, on a GPU, TensorRT's own refusal of a file that is not a plan (its error path, for real)."""
    from hrm_export.core.errors import UserError
    from hrm_export.tensorrt.library import deserialize, load_library, require_cuda_device

    try:
        lib = load_library()
    except UserError as e:
        return {"library": None, "answer": str(e)}
    out = {"library": lib.name, "version": lib.version}
    try:
        require_cuda_device(device if device.startswith("cuda") else "cuda")
        with tempfile.TemporaryDirectory() as tmp:
            bogus = Path(tmp) / "not-a-plan.plan"
            bogus.write_bytes(b"ftrt" + bytes(124))
            deserialize(lib, bogus)
        out["answer"] = "deserialized a file that is not a plan (unexpected)"
    except UserError as e:
        out["answer"] = str(e)
    return out


def manifest_only(out_dir: Path, checkpoint: Path | None) -> None:
    """The bundle the PyTorch steps need when ONNX export cannot run on this image: manifest.json with the config,
    the checkpoint record and the shipped latency and throughput profiles, no ONNX files."""
    from hrm_export.bench import torch_only_bundle
    from hrm_export.core.profiles import load_profile

    manifest = torch_only_bundle(out_dir, checkpoint)
    for name in ("latency", "throughput"):
        profile = load_profile(name)
        profile.check_model(manifest.config)
        manifest.profiles[name] = profile.to_dict()
    manifest.save()
    print(json.dumps({"bundle": str(out_dir), "profiles": list(manifest.profiles)}))


# -- summary ---------------------------------------------------------------------------------------------------------
def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _verify_lines(name: str, r: dict) -> list[str]:
    lines = [f"### {name}: {r.get('engine', '?')} vs {r.get('reference', '?')} — "
             f"**{'PASSED' if r.get('passed') else 'FAILED'}** ({r.get('elapsed_s', 0):.0f} s)", "",
             "| scope | output | cases | max abs | budget | min cosine | ok |", "|---|---|---|---|---|---|---|"]
    for s in r.get("summary", []):
        budget = (s.get("budget") or {}).get("max_abs")
        lines.append(f"| {s['scope']} | {s['output']} | {s['cases']} | {s['max_abs']:.3g} | {budget or '—'} | "
                     f"{s['min_cosine']:.6f} | {'ok' if s['passed'] else 'FAIL'} |")
    d = r.get("decision") or {}
    if d.get("action_judged"):
        lines += ["", f"Decisions: actions {d['action_agree']}/{d['action_judged']} agree outside near ties "
                  f"({d.get('ties', 0)} ties); halting minutes {d.get('halt_agree')}/{d.get('sessions')} "
                  f"(largest shift {d.get('halt_max_shift')} min); quantity max abs {d.get('quantity_max_abs')}"]
    lines += [f"- {f}" for f in r.get("failures", [])[:10]]
    return lines + [""]


def summary(work: Path, out: Path, seconds: int) -> int:
    steps = list(csv.DictReader((out / "steps.tsv").open(), delimiter="\t"))
    env = _load(work / "environment.json")
    verify = {s["step"]: _load(work / f"{s['step']}.json") for s in steps if s["step"].startswith("verify-")}
    bench = {s["step"]: _load(work / f"{s['step']}.json") for s in steps if s["step"].startswith("bench")}
    verify, bench = {k: v for k, v in verify.items() if v}, {k: v for k, v in bench.items() if v}
    (out / "verify.json").write_text(json.dumps(verify, indent=1))
    (out / "bench.json").write_text(json.dumps(bench, indent=1))
    if env:
        with (out / "environment.txt").open("a") as f:
            f.write("\n" + json.dumps(env, indent=1) + "\n")

    md = [f"# GPU check: {len(steps)} steps in {seconds} s", ""]
    if env:
        gpu = env.get("gpu") or {}
        v = env.get("versions", {})
        md += [f"Machine: {gpu.get('name', 'no GPU')} (compute capability {gpu.get('compute_capability', '—')}, "
               f"{gpu.get('memory_gib', '—')} GiB), {env.get('logical_cores')} CPU cores ({env.get('cpu')}); "
               f"Python {v.get('python')}, torch {v.get('torch')} (CUDA {v.get('cuda')}), onnx {v.get('onnx')}, "
               f"onnxruntime {v.get('onnxruntime')}; TensorRT library: "
               f"{(env.get('tensorrt_library') or {}).get('library') or 'none'} — "
               f"{(env.get('tensorrt_library') or {}).get('answer', '')}", ""]
    md += ["| step | status | exit | seconds | note |", "|---|---|---|---|---|"]
    md += [f"| {s['step']} | {s['status']} | {s['exit_code']} | {s['seconds']} | {s['note']} |" for s in steps]
    md.append("")
    for name, report in verify.items():
        md += _verify_lines(name, report)
    for name in bench:
        table = work / f"{name}.md"
        if table.is_file():
            md += [f"## {name}", "", table.read_text()]
    for s in steps:  # a step whose output is text (the CUDA tests): its closing lines
        text = work / f"{s['step']}.json"
        if s["step"] not in verify and s["step"] not in bench and text.is_file() and _load(text) is None:
            tail = text.read_text().strip().splitlines()[-15:]
            if tail:
                md += [f"## {s['step']}", "", "```", *tail, "```", ""]
    (out / "results.md").write_text("\n".join(md) + "\n")
    extra = sorted(p.name for p in out.iterdir())
    if len(extra) > FILES_BACK:
        print(f"warning: {len(extra)} files in {out}; the lent machines return {FILES_BACK}", file=sys.stderr)

    statuses = {s["status"] for s in steps}
    if statuses & {"error", "timed-out", "no-time"}:
        return 1
    return 3 if "gate-failed" in statuses else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("environment")
    e.add_argument("--device", default="cuda")
    m = sub.add_parser("manifest-only")
    m.add_argument("dir", type=Path)
    m.add_argument("--checkpoint", type=Path)
    s = sub.add_parser("summary")
    s.add_argument("work", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--seconds", type=int, default=0)
    a = p.parse_args()
    try:
        return _run(a)
    except Exception as e:  # noqa: BLE001 (one line for the steps table; run.log has the rest)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _run(a) -> int:
    if a.cmd == "environment":
        print(json.dumps(environment(a.device), indent=1))
        return 0
    if a.cmd == "manifest-only":
        manifest_only(a.dir, a.checkpoint)
        return 0
    return summary(a.work, a.out, a.seconds)


if __name__ == "__main__":
    sys.exit(main())
