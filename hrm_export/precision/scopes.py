"""ONNX node → PyTorch module name, so precision choices are stated as `l_module.blocks.3.attn.qkv`.

torch's dynamo exporter records the module stack of each node in the metadata entry
"pkg.torch.onnx.name_scopes" (e.g. ['', 'blocks.0', 'blocks.0.attn', 'blocks.0.attn.qkv', 'linear_1']: the
module paths, then the aten call); the TorchScript exporter writes it into the node name
("/blocks.0/attn/qkv/MatMul"). Nodes the optimiser creates (Split, ...) carry neither and inherit the module of
the node that produces their first input. Names are HRM-level: the l_step graph (LStep wraps the L-module as
`.l`) and the l_module graph both map to `l_module.*`, since they share every weight.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Iterable

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
ROOT = {"h_module": "h_module", "l_module": "l_module", "l_step": "l_module"}
_WRAPPER_PREFIX = {"l_step": "l."}  # LStep.l


def _raw_scope(node) -> str | None:
    for p in node.metadata_props:
        if p.key == SCOPES_KEY:
            try:
                scopes = ast.literal_eval(p.value)  # a printed Python list of strings
            except (ValueError, SyntaxError):
                return None
            paths = [s for s in scopes[1:-1] if s and not s.startswith("_")]  # drop root '' and the aten call
            return paths[-1] if paths else ""
    if node.name.startswith("/"):  # TorchScript exporter: "/blocks.0/attn/qkv/MatMul"
        return ".".join(node.name.strip("/").split("/")[:-1])
    return None


def node_modules(graph, module: str) -> dict[str, str]:
    """{node name: HRM-level module path} for every node of `graph` (an onnx GraphProto of `module`)."""
    root, wrapper = ROOT.get(module, module), _WRAPPER_PREFIX.get(module, "")
    producer: dict[str, str] = {}
    out: dict[str, str] = {}
    for node in graph.node:  # graph nodes are topologically sorted, so producers come first
        scope = _raw_scope(node)
        if scope is None:
            first = next((i for i in node.input if i), "")
            name = producer.get(first, root)
        else:
            if wrapper and scope.startswith(wrapper):
                scope = scope[len(wrapper):]
            elif wrapper and scope == wrapper.rstrip("."):
                scope = ""
            name = f"{root}.{scope}" if scope else root
        out[node.name] = name
        for o in node.output:
            producer[o] = name
    return out


def matches(module_path: str, patterns: Iterable[str]) -> bool:
    """True if the module or one of its parents matches a glob (`l_module.blocks.*.attn` covers `.attn.qkv`)."""
    parts = module_path.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, pat) for pat in patterns for p in prefixes)


def weight_matmuls(model) -> dict[str, str]:
    """{node name: module} of the MatMul/Gemm nodes with a constant weight: the Linear layers of the graph."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    module = graph_module(model)
    mods = node_modules(model.graph, module)
    return {n.name: mods[n.name] for n in model.graph.node
            if n.op_type in ("MatMul", "Gemm") and len(n.input) > 1 and n.input[1] in consts}


def graph_module(model) -> str:
    """Which HRM module an exported graph is ("h_module" | "l_module" | "l_step"), from its metadata."""
    for p in model.metadata_props:
        if p.key == "hrm_export.module":
            return p.value
    names = {i.name for i in model.graph.input}
    if "days" in names:
        return "h_module"
    return "l_step" if "past_kv" in names else "l_module"
