"""Precision scopes: which PyTorch module each ONNX node belongs to, and glob matching on those names.

Names are HRM-level (`l_module.blocks.3.attn.qkv`); the l_step and l_module graphs both map to `l_module.*`,
since they share every weight. The node → module mapping itself lives in hrm_export.core.node_names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from hrm_export.core.node_names import graph_node_origins


def node_modules(graph, module: str) -> dict[str, str]:
    """{node name: HRM-level module path} for every node of `graph` (an onnx GraphProto of `module`)."""
    return {o.node: o.module_name for o in graph_node_origins(graph, module)}


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
