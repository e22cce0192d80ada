"""fp32 ONNX → bf16-typed ONNX for TensorRT's strongly typed networks (TensorRT 11 has no precision flags).

A graph pass of our own rather than ModelOpt AutoCast: the islands here are PyTorch modules (RMSNorm, the
heads, the FiLM generator) and we name them as such (`--keep-fp32 l_module.blocks.3.attn`); AutoCast picks
islands by op type / node name / data magnitude, not by module, and would also need its output checked the
same way. The pass colours nodes, then inserts Casts where colours meet:

* seeds: every Linear (MatMul/Gemm with a constant weight) outside an island runs in bf16, weights stored bf16;
* data movement and matmul-like ops (Reshape, Transpose, Split, Concat, MatMul, Attention, ...) follow their
  inputs: bf16 if any float input is bf16 (the attention scores inside `Attention` accumulate in fp32 in
  TensorRT; the decomposed graph of opset 18 keeps its Softmax in fp32 because Softmax is never coloured);
* elementwise ops (bias Add, Gelu, scale Mul) are bf16 only if every non-constant float input is bf16, so the
  residual stream (x + attn(...)) and the FiLM `x·(1+γ)+β` stay fp32;
* islands never turn bf16: norms (statistics in fp32, as the PyTorch reference does), the trading and ACT heads,
  the H-module with its FiLM generator (core.specs.FP32_MODULES), plus any module matching a --keep-fp32 glob.
  Graph inputs and outputs stay fp32.
"""

from __future__ import annotations

from collections.abc import Iterable

from hrm_export.core.specs import FP32_MODULES
from hrm_export.precision.graph import cast_node, constants, drop_unused_initializers, tensor_types, topo_sort
from hrm_export.precision.scopes import graph_module, matches, node_modules, weight_matmuls

# Modules kept in fp32 in every bf16 graph (globs over HRM-level module names; see scopes.py): norms, the heads,
# and the whole H-module with its FiLM generator.
DEFAULT_ISLANDS = ("*.norm*", "*.heads", *FP32_MODULES)  # a module name covers its children (scopes.matches)
FOLLOW_ANY = {"MatMul", "Gemm", "Attention", "Reshape", "Transpose", "Split", "Concat", "Slice", "Squeeze",
              "Unsqueeze", "Identity", "Flatten", "Expand"}
FOLLOW_ALL = {"Add", "Sub", "Mul", "Div", "Gelu", "Erf", "Tanh", "Sigmoid", "Relu", "Neg"}
FLOAT, BFLOAT16 = 1, 16  # onnx.TensorProto.FLOAT / BFLOAT16


def plan_bf16(model, keep_fp32: Iterable[str] = ()) -> tuple[set[str], dict[str, str]]:
    """Which nodes run in bf16 → (bf16 node names, {node: module}). Pure: the model is not changed."""
    islands = (*DEFAULT_ISLANDS, *keep_fp32)
    mods = node_modules(model.graph, graph_module(model))
    types, consts = tensor_types(model), constants(model)
    seeds = {n for n, m in weight_matmuls(model).items() if not matches(m, islands)}
    bf16_nodes: set[str] = set()
    bf16_tensors: set[str] = set()
    for node in model.graph.node:
        if matches(mods[node.name], islands) and node.name not in seeds:
            continue
        floats = [i for i in node.input if i and types.get(i) == FLOAT]
        live = [i for i in floats if i not in consts]
        if node.name in seeds:
            colour = True
        elif node.op_type in FOLLOW_ANY:
            colour = any(i in bf16_tensors for i in floats)
        elif node.op_type in FOLLOW_ALL:
            colour = bool(live) and all(i in bf16_tensors for i in live)
        else:
            colour = False
        if colour:
            bf16_nodes.add(node.name)
            bf16_tensors.update(o for o in node.output if types.get(o) == FLOAT)
    return bf16_nodes, mods


def to_bf16(model, keep_fp32: Iterable[str] = ()):
    """Return (bf16 ModelProto, facts for the manifest's made_by). The input model is not modified."""
    import onnx

    keep_fp32 = tuple(keep_fp32)
    bf16_nodes, mods = plan_bf16(model, keep_fp32)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    types, consts = tensor_types(model), constants(model)
    inits = {i.name: i for i in model.graph.initializer}
    bf16_out = {o for n in model.graph.node if n.name in bf16_nodes for o in n.output if types.get(o) == FLOAT}

    # A graph output produced in bf16 gets a fp32 Cast under its own name.
    outputs = {o.name for o in model.graph.output}
    renamed = {o: f"{o}.bf16" for o in bf16_out & outputs}
    for node in model.graph.node:
        node.output[:] = [renamed.get(o, o) for o in node.output]
        node.input[:] = [renamed.get(i, i) if node.name in bf16_nodes else i for i in node.input]
    bf16_out = {renamed.get(o, o) for o in bf16_out}

    new_nodes, made = [], {}
    n_casts = 0

    def converted(tensor: str, to: int) -> str:
        nonlocal n_casts
        key = (tensor, to)
        if key not in made:
            suffix = "bf16" if to == BFLOAT16 else "fp32"
            if to == BFLOAT16 and tensor in inits:  # weights are stored in bf16, no Cast at run time
                made[key] = _bf16_initializer(model, inits[tensor], f"{tensor}.{suffix}")
            else:
                made[key] = f"{tensor}.to_{suffix}"
                new_nodes.append(cast_node(tensor, made[key], to, f"{tensor}/Cast_{suffix}"))
                n_casts += 1
        return made[key]

    for node in model.graph.node:
        if node.name in bf16_nodes:
            node.input[:] = [converted(i, BFLOAT16) if i and types.get(i) == FLOAT and i not in bf16_out else i
                             for i in node.input]
        else:
            node.input[:] = [converted(i, FLOAT) if i in bf16_out else i for i in node.input]
    for o, tmp in renamed.items():
        new_nodes.append(cast_node(tmp, o, FLOAT, f"{o}/Cast_fp32"))
        n_casts += 1
    model.graph.node.extend(new_nodes)
    topo_sort(model)
    drop_unused_initializers(model)
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    facts = {
        "islands": list(DEFAULT_ISLANDS) + list(keep_fp32),
        "bf16_nodes": len(bf16_nodes),
        "fp32_nodes": len(model.graph.node) - len(bf16_nodes) - n_casts,
        "casts_inserted": n_casts,
        "fp32_linears": sorted({mods[n] for n in weight_matmuls_of(mods, bf16_nodes, consts, model)}),
    }
    return model, facts


def weight_matmuls_of(mods: dict[str, str], bf16_nodes: set[str], consts: set[str], model) -> list[str]:
    """Linear (weight MatMul/Gemm) nodes left in fp32: the islands as they landed in this graph."""
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.name in mods
            and n.name not in bf16_nodes and len(n.input) > 1 and n.input[1] in consts]


def _bf16_initializer(model, init, name: str) -> str:
    import ml_dtypes
    import onnx
    from onnx import numpy_helper

    arr = numpy_helper.to_array(init).astype(ml_dtypes.bfloat16)  # round to nearest even
    t = onnx.helper.make_tensor(name, BFLOAT16, arr.shape, arr.tobytes(), raw=True)
    model.graph.initializer.append(t)
    return name


def bf16_fraction(model) -> float:
    """Share of the weights (by element count) stored in bf16: what the ≈55 MB bf16 size rests on."""
    total = bf = 0
    for i in model.graph.initializer:
        n = 1
        for d in i.dims:
            n *= d
        total += n
        bf += n if i.data_type == BFLOAT16 else 0
    return bf / max(total, 1)
