"""Map an ONNX node back to the PyTorch module it came from: for TensorRT parser errors people can act on, and
for precision choices stated as `l_module.blocks.3.attn.qkv`.

Both torch exporters leave the module path in the graph:
- TorchScript exporter (dynamo=False): the node name, "/blocks.3/attn/qkv/MatMul" (path / op);
- dynamo exporter: metadata_props["pkg.torch.onnx.name_scopes"], a printed list of the cumulative module
  paths then the aten call: "['', 'blocks.3', 'blocks.3.attn', 'blocks.3.attn.qkv', 'linear_1']".
Nodes the ONNX optimiser makes (a Split, ...) carry neither; they take the module of their first input's
producer.
The TorchScript exporter scopes only modules entered through forward(): for LStep (which calls Block.step)
its names lose the `blocks.i` level, so the dynamo export (what `hrm-export export` writes) is the one to read.
Paths are relative to the module that was exported (HRM.h, HRM.l, or LStep whose child `l` is HRM.l); the
result is made relative to HRM, so `HRM.get_submodule(torch_path)` finds the module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# Which HRM child each ONNX module exports, and the ONNX module each HRM child is shown as.
EXPORT_ROOT = {"h_module": "h", "l_module": "l", "l_step": "l"}
SHOWN_AS = {"h": "h_module", "l": "l_module"}


@dataclass(frozen=True)
class NodeOrigin:
    node: str  # ONNX node name
    op: str  # ONNX op type ("" if unknown)
    torch_path: str  # HRM-relative module path, e.g. "l.blocks.3.attn" ("" = the HRM itself)

    @property
    def module_name(self) -> str:
        """'l_module.blocks.3.attn': the ONNX module name followed by the path inside it."""
        head, _, rest = self.torch_path.partition(".")
        return ".".join(p for p in (SHOWN_AS.get(head, head), rest) if p)


def scopes_from_node(name: str, metadata: dict[str, str] | None = None) -> list[str] | None:
    """The module path components of a node, relative to the exported module (op dropped); None if unknown."""
    metadata = metadata or {}
    scopes = metadata.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            entries = [str(p) for p in ast.literal_eval(scopes)]
        except (ValueError, SyntaxError):
            return None
        # cumulative paths between the root '' and the aten call; '_…' entries are exporter hooks, not modules
        paths = [p for p in entries[1:-1] if p and not p.startswith("_")]
        return paths[-1].split(".") if paths else []
    if name.startswith("/"):
        return [p for p in name.strip("/").split("/")[:-1] if p]
    return None


def torch_path(module: str, scopes: list[str]) -> str:
    """HRM-relative path: prefix the exported module's attribute unless the path already starts with it."""
    root = EXPORT_ROOT.get(module, "")
    path = ".".join(scopes)
    if scopes and scopes[0] in SHOWN_AS:  # exported through a wrapper that holds HRM.h / HRM.l (e.g. LStep.l)
        return path
    return ".".join(p for p in (root, path) if p)


def node_origin(module: str, name: str, op: str = "", metadata: dict[str, str] | None = None) -> NodeOrigin | None:
    scopes = scopes_from_node(name, metadata)
    return None if scopes is None else NodeOrigin(name, op, torch_path(module, scopes))


def graph_node_origins(graph, module: str) -> list[NodeOrigin]:
    """Every node of an onnx GraphProto of `module` with its origin, in graph order."""
    origins, producer = [], {}
    for n in graph.node:  # topologically sorted: producers come first
        o = node_origin(module, n.name, n.op_type, {p.key: p.value for p in n.metadata_props})
        if o is None:  # optimiser-made node: inherit from whoever made its first input (else the module root)
            first = next((i for i in n.input if i), "")
            parent = producer.get(first)
            o = NodeOrigin(n.name, n.op_type, parent.torch_path if parent else torch_path(module, []))
        origins.append(o)
        producer.update({out: o for out in n.output})
    return origins


def onnx_node_origins(onnx_path: str | Path, module: str) -> list[NodeOrigin]:
    """Every node of an ONNX file with its origin, in graph order (index i ↔ the parser's node index i)."""
    import onnx

    return graph_node_origins(onnx.load(str(onnx_path), load_external_data=False).graph, module)


def describe_parser_error(
    onnx_path: str | Path, module: str, desc: str, node_index: int = -1, node_name: str = "", op: str = ""
) -> str:
    """One line for a TensorRT ONNX-parser error: what failed, at which ONNX node, from which PyTorch module."""
    origin = None
    if node_name or node_index >= 0:
        origins = onnx_node_origins(onnx_path, module)
        by_name = {o.node: o for o in origins}
        if node_name in by_name:
            origin = by_name[node_name]
        elif 0 <= node_index < len(origins):
            origin = origins[node_index]
    if origin is None:
        return f"{Path(onnx_path).name}: TensorRT's ONNX parser failed: {desc}"
    where = f"node {origin.node!r} ({op or origin.op})"
    return (f"{Path(onnx_path).name}: TensorRT's ONNX parser failed at {where} from PyTorch module "
            f"{origin.module_name} (HRM.{origin.torch_path or '<root>'}): {desc}")
