"""Small ONNX graph helpers shared by the precision passes: tensor dtypes, constants, casts, topological order."""

from __future__ import annotations

from collections import defaultdict


def tensor_types(model) -> dict[str, int]:
    """{tensor name: onnx elem_type} for graph inputs, initializers, outputs and every inferred intermediate."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}
    for vi in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in model.graph.initializer:
        types[init.name] = init.data_type
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    return types


def constants(model) -> set[str]:
    """Names of tensors fixed at build time: initializers and Constant outputs."""
    names = {i.name for i in model.graph.initializer}
    return names | {n.output[0] for n in model.graph.node if n.op_type == "Constant"}


def consumers(model) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for node in model.graph.node:
        for i in node.input:
            if i:
                out[i].append(node)
    return out


def cast_node(src: str, dst: str, to: int, name: str):
    import onnx

    return onnx.helper.make_node("Cast", [src], [dst], name=name, to=to)


def topo_sort(model) -> None:
    """Reorder graph.node so every node follows the producers of its inputs (passes append nodes at the end)."""
    nodes = list(model.graph.node)
    produced_by = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    ready = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    deps = [{t for t in n.input if t not in ready and t in produced_by} for n in nodes]
    users: dict[int, list[int]] = defaultdict(list)
    for i, d in enumerate(deps):
        for t in d:
            users[produced_by[t]].append(i)
    missing = [len({produced_by[t] for t in d}) for d in deps]
    order, queue = [], [i for i, m in enumerate(missing) if m == 0]
    seen_edges: dict[int, set[int]] = defaultdict(set)
    while queue:
        i = queue.pop(0)
        order.append(i)
        for u in users[i]:
            if i in seen_edges[u]:
                continue
            seen_edges[u].add(i)
            missing[u] -= 1
            if missing[u] == 0:
                queue.append(u)
    assert len(order) == len(nodes), "graph has a cycle or a dangling input after the precision pass"
    sorted_nodes = [nodes[i] for i in order]
    del model.graph.node[:]
    model.graph.node.extend(sorted_nodes)


def drop_unused_initializers(model) -> None:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
