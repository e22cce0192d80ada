"""The config.pbtxt of every model in the repository, as dicts for pbtxt.to_pbtxt.

Per-module models (for the official Triton containers): inputs and outputs from the manifest's record of the
artifact, named axes as -1. A module whose every tensor has the batch first (h_module, l_module) gets
max_batch_size from its profiles and dynamic batching; l_step's K/V cache has the batch on axis 2, so it
keeps max_batch_size 0 with the batch written in its dims (Triton batches only along the first axis).

hrm_day and hrm_stream (Python backend over the runtime) take one instrument per batch row:
    hrm_day     days (D, F_day), minutes (T, F_min)  →  per minute action, confidence, quantity, q_halt,
                q_continue, halted (T,); halt_minute (1,)
    hrm_stream  sequence batching, correlation id = instrument. START carries days (D, F_day); a request with
                minutes (T, F_min) and minute (1,) = the session minute of minutes[0] returns the decision at its
                last minute. Outputs: minute (1,) (-1 when the request pushed no minute) and, with a decision,
                the fields of DECISION_OUTPUTS, each (1,), plus halt_minute (1,).
"""

from __future__ import annotations

from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.triton.pbtxt import Enum

# Manifest dtypes → Triton data types (model_config.proto DataType).
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
                "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
                "bool": "TYPE_BOOL"}

# The decision fields of hrm_day (per minute) and hrm_stream (the request's last minute), with their dtypes.
DECISION_OUTPUTS = {"action": "int32", "confidence": "float64", "quantity": "float64", "q_halt": "float32",
                    "q_continue": "float32", "halted": "bool"}
STREAM_CONTROLS = ("START", "END", "CORRID")

# Dynamic batching waits at most this long for more requests: a tenth of the CPU's fastest l_step
# (~3 ms int8-cpu); on GPUs raise it towards the step time to fill batches.
QUEUE_DELAY_US = 200


def triton_type(dtype: str) -> Enum:
    if dtype not in TRITON_TYPES:
        raise UserError(f"tensor dtype {dtype!r} has no Triton data type here",
                        hint=f"re-export the bundle; known dtypes: {', '.join(TRITON_TYPES)}")
    return Enum(TRITON_TYPES[dtype])


def batch_first(artifact: Artifact) -> bool:
    """Every input and output has the batch as its first axis (so Triton can batch requests)."""
    return all(t["shape"][:1] == ["batch"] for t in (*artifact.inputs, *artifact.outputs))


def profile_batch(manifest: Manifest, artifact: Artifact) -> int:
    """The largest batch any of the artifact's profiles admits."""
    names = artifact.profiles or list(manifest.profiles)
    tops = [manifest.profiles[p]["axes"]["batch"][2] for p in names if p in manifest.profiles]
    if not tops:
        raise UserError(f"{manifest.dir}/{artifact.path}: no profile records its batch range",
                        hint=f"re-export the bundle: hrm-export export --out {manifest.dir}")
    return max(int(b) for b in tops)


def _tensor(t: dict, drop_batch: bool) -> dict:
    dims = [d if isinstance(d, int) else -1 for d in t["shape"]]
    return {"name": t["name"], "data_type": triton_type(t["dtype"]), "dims": dims[1:] if drop_batch else dims}


def _io(name: str, dtype: str, dims: list[int], optional: bool = False) -> dict:
    return {"name": name, "data_type": triton_type(dtype), "dims": dims, "optional": True if optional else None}


def _parameters(values: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": {"string_value": str(v)}} for k, v in values.items()]


def module_config(name: str, manifest: Manifest, artifact: Artifact, max_batch: int | None, instances: int) -> dict:
    """An onnxruntime_onnx model of an ONNX artifact."""
    batching = batch_first(artifact)
    top = min(profile_batch(manifest, artifact), max_batch or 1 << 30) if batching else 0
    return {
        "name": name,
        "platform": "onnxruntime_onnx",
        "max_batch_size": top,
        "input": [_tensor(t, batching) for t in artifact.inputs],
        "output": [_tensor(t, batching) for t in artifact.outputs],
        "dynamic_batching": {"max_queue_delay_microseconds": QUEUE_DELAY_US} if batching else None,
        # KIND_AUTO: on the GPUs when the container sees any (count per GPU), else on the CPU
        "instance_group": [{"count": instances, "kind": Enum("KIND_AUTO")}],
    }


def plan_config(name: str, manifest: Manifest, plans: dict[str, Artifact], files: dict[str, str],
                max_batch: int | None, instances: int) -> dict:
    """A tensorrt_plan model of one module's plans, one per compute capability (`files`: cc → file name)."""
    first = next(iter(plans.values()))
    batching = batch_first(first)
    top = min(profile_batch(manifest, first), max_batch or 1 << 30) if batching else 0
    profiles = first.profiles or list(manifest.profiles)
    return {
        "name": name,
        "platform": "tensorrt_plan",
        "max_batch_size": top,
        "default_model_filename": next(iter(files.values())),
        "cc_model_filenames": [{"key": cc, "value": f} for cc, f in files.items()],
        "input": [_tensor(t, batching) for t in first.inputs],
        "output": [_tensor(t, batching) for t in first.outputs],
        "dynamic_batching": {"max_queue_delay_microseconds": QUEUE_DELAY_US} if batching else None,
        # every optimisation profile of the plan (in the order they were built) is open to every instance,
        # so the server picks the one whose ranges hold the request's shapes
        "instance_group": [{"count": instances, "kind": Enum("KIND_GPU"),
                            "profile": [str(i) for i in range(len(profiles))]}],
        "optimization": {"cuda": {"graphs": True, "graph_spec": [
            _graph_spec(manifest.profiles[p]["axes"], first, batching) for p in profiles if p in manifest.profiles]}},
    }


def _graph_spec(axes: dict, artifact: Artifact, batching: bool) -> dict:
    """A CUDA graph captured at the profile's opt point (other shapes run without a graph)."""
    opt = {a: v[1] for a, v in axes.items()}
    opt.setdefault("total_minutes", opt.get("past_minutes", 0) + opt.get("new_minutes", 0))

    def dims(t: dict) -> list[int]:
        d = [x if isinstance(x, int) else int(opt[x]) for x in t["shape"]]
        return d[1:] if batching else d

    return {"batch_size": int(opt["batch"]) if batching else 0,
            "input": [{"key": t["name"], "value": {"dim": dims(t)}} for t in artifact.inputs]}


def day_config(manifest: Manifest, max_batch: int, instances: int, params: dict[str, str]) -> dict:
    c = manifest.config
    per_minute = [_io(n, dt, [-1]) for n, dt in DECISION_OUTPUTS.items()]
    return {
        "name": "hrm_day",
        "backend": "python",
        "max_batch_size": max_batch,
        "input": [_io("days", "float32", [-1, c.n_day_features]), _io("minutes", "float32", [-1, c.n_minute_features])],
        "output": [*per_minute, _io("halt_minute", "int32", [1])],
        "dynamic_batching": {"max_queue_delay_microseconds": QUEUE_DELAY_US},
        "instance_group": [{"count": instances, "kind": Enum("KIND_AUTO")}],
        "parameters": _parameters(params),
    }


def stream_config(manifest: Manifest, max_batch: int, instances: int, params: dict[str, str],
                  idle_s: float, max_sequences: int) -> dict:
    c = manifest.config
    flag = lambda name, kind: {"name": name, "control": [  # noqa: E731
        {"kind": Enum(kind), "int32_false_true": [0, 1]}]}
    return {
        "name": "hrm_stream",
        "backend": "python",
        "max_batch_size": max_batch,
        "input": [_io("days", "float32", [-1, c.n_day_features], optional=True),
                  _io("minutes", "float32", [-1, c.n_minute_features], optional=True),
                  _io("minute", "int32", [1], optional=True)],
        "output": [_io("minute", "int32", [1]), *(_io(n, dt, [1]) for n, dt in DECISION_OUTPUTS.items()),
                   _io("halt_minute", "int32", [1])],
        "sequence_batching": {
            # Triton forgets a sequence idle this long; the model frees its K/V cache on the same clock
            "max_sequence_idle_microseconds": int(idle_s * 1e6),
            "control_input": [
                flag("START", "CONTROL_SEQUENCE_START"), flag("END", "CONTROL_SEQUENCE_END"),
                {"name": "CORRID", "control": [{"kind": Enum("CONTROL_SEQUENCE_CORRID"),
                                                "data_type": Enum("TYPE_UINT64")}]}],
            # requests of different sequences are batched into one execute(); a sequence past
            # max_candidate_sequences waits for a free slot
            "oldest": {"max_candidate_sequences": max_sequences, "max_queue_delay_microseconds": QUEUE_DELAY_US},
        },
        "instance_group": [{"count": instances, "kind": Enum("KIND_AUTO")}],
        "parameters": _parameters(params),
    }
