"""What differs between two exports or two model folders: ONNX graphs part by part, JSON by key,
safetensors by tensor.

Used to find why two runs of the train stage wrote different ``models/security`` folders, and by
the determinism tests to say what changed when bytes differ.  For ONNX graphs the parts are the
model metadata (IR version, opsets, producer, doc strings, metadata properties), inputs and
outputs, the node sequence (op types, names, inputs/outputs, attributes, in order), the
initialisers (names, types, shapes, values), with quantisation scales and zero points reported
on their own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: Initialisers whose name ends so are quantisation parameters (quantize_dynamic's naming).
QUANT_SUFFIXES: tuple[str, ...] = ("_scale", "_zero_point")


def _array(tensor: Any) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _max_diff(x: np.ndarray, y: np.ndarray) -> str:
    if x.shape != y.shape or x.dtype != y.dtype:
        return f"{x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}"
    if x.dtype.kind in "fc":
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    else:
        diff = np.abs(x.astype(np.int64) - y.astype(np.int64))
    changed = int(np.count_nonzero(diff))
    return f"{changed} of {x.size} values differ, largest by {float(diff.max()):.3g}"


def diff_graphs(a: str | os.PathLike[str], b: str | os.PathLike[str], *, limit: int = 20) -> list[str]:
    """Differences between ONNX files ``a`` and ``b``, one line each (empty when the bytes are equal)."""
    import onnx

    a, b = Path(a), Path(b)
    if a.read_bytes() == b.read_bytes():
        return []
    ga, gb = onnx.load(str(a)), onnx.load(str(b))
    out: list[str] = []
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version", "doc_string"):
        if getattr(ga, field) != getattr(gb, field):
            out.append(f"metadata {field}: {getattr(ga, field)!r} vs {getattr(gb, field)!r}")
    opsets = ({o.domain: o.version for o in ga.opset_import}, {o.domain: o.version for o in gb.opset_import})
    if opsets[0] != opsets[1]:
        out.append(f"metadata opset_import: {opsets[0]} vs {opsets[1]}")
    props = ({p.key: p.value for p in ga.metadata_props}, {p.key: p.value for p in gb.metadata_props})
    if props[0] != props[1]:
        out.append(f"metadata properties: {props[0]} vs {props[1]}")
    for part in ("input", "output"):
        sa = [str(v).replace("\n", " ") for v in getattr(ga.graph, part)]
        sb = [str(v).replace("\n", " ") for v in getattr(gb.graph, part)]
        if sa != sb:
            out.append(f"graph {part}s differ")
    na, nb = list(ga.graph.node), list(gb.graph.node)
    if [n.op_type for n in na] != [n.op_type for n in nb]:
        first = next((i for i, (x, y) in enumerate(zip(na, nb)) if x.op_type != y.op_type),
                     min(len(na), len(nb)))
        out.append(f"node order: {len(na)} vs {len(nb)} nodes, op types differ from position {first}")
    else:
        changed = [i for i, (x, y) in enumerate(zip(na, nb, strict=True))
                   if x.SerializeToString() != y.SerializeToString()]
        renamed = [i for i in changed if (na[i].name, list(na[i].input), list(na[i].output))
                   != (nb[i].name, list(nb[i].input), list(nb[i].output))]
        if renamed:
            i = renamed[0]
            out.append(f"node names/edges: {len(renamed)} node(s) differ, first #{i} {na[i].op_type} "
                       f"{na[i].name!r} vs {nb[i].name!r}")
        attributes = [i for i in changed if i not in renamed]
        if attributes:
            i = attributes[0]
            out.append(f"node attributes: {len(attributes)} node(s) differ, first #{i} {na[i].op_type} "
                       f"{na[i].name!r}")
    ia = {t.name: t for t in ga.graph.initializer}
    ib = {t.name: t for t in gb.graph.initializer}
    if list(ia) != list(ib):
        only_a, only_b = sorted(set(ia) - set(ib)), sorted(set(ib) - set(ia))
        example = f", e.g. {(only_a or only_b)[0]!r}" if only_a or only_b else ", same names in another order"
        out.append(f"initialiser names/order differ ({len(only_a)} only in {a.name}, {len(only_b)} only in "
                   f"{b.name}{example})")
    quant: list[str] = []
    weights: list[str] = []
    for name in ia:
        if name in ib and ia[name].SerializeToString() != ib[name].SerializeToString():
            line = f"{name}: {_max_diff(_array(ia[name]), _array(ib[name]))}"
            (quant if name.endswith(QUANT_SUFFIXES) else weights).append(line)
    if quant:
        out.append(f"quantisation scales/zero points: {len(quant)} differ; " + "; ".join(quant[:3]))
    if weights:
        out.append(f"initialisers: {len(weights)} differ; " + "; ".join(weights[:3]))
    if not out:
        out.append("bytes differ, but no graph part does (serialisation order)")
    return out[:limit]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def diff_json(a: str | os.PathLike[str], b: str | os.PathLike[str], *, limit: int = 10) -> list[str]:
    """Keys whose values differ between two JSON files, ``key: old -> new`` (dotted paths)."""
    fa = _flatten(json.loads(Path(a).read_text(encoding="utf-8")))
    fb = _flatten(json.loads(Path(b).read_text(encoding="utf-8")))
    keys = sorted(set(fa) | set(fb))
    lines = [f"{key}: {fa.get(key, '(absent)')!r} -> {fb.get(key, '(absent)')!r}" for key in keys
             if fa.get(key, "(absent)") != fb.get(key, "(absent)")]
    if not lines and Path(a).read_bytes() != Path(b).read_bytes():
        lines.append("same values, different bytes (formatting or key order)")
    return lines[:limit]


def diff_safetensors(a: str | os.PathLike[str], b: str | os.PathLike[str], *, limit: int = 5) -> list[str]:
    """Tensors whose values differ between two safetensors files."""
    from safetensors.numpy import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    lines = [f"tensor {name}: {_max_diff(ta[name], tb[name])}" for name in ta if name in tb
             and not np.array_equal(ta[name], tb[name])]
    if set(ta) != set(tb):
        lines.insert(0, f"tensor names differ ({sorted(set(ta) ^ set(tb))[:3]})")
    if not lines and Path(a).read_bytes() != Path(b).read_bytes():
        lines.append("same tensors, different bytes (header or order)")
    return lines[:limit]


def diff_model_dirs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``{relative path: differences}`` for every file that differs between two model folders (a
    file present in one only is reported as such); empty when the folders are byte-identical."""
    a, b = Path(a), Path(b)
    files_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    report: dict[str, list[str]] = {}
    for name in sorted(files_a | files_b):
        if name not in files_b or name not in files_a:
            report[name] = [f"only in {a if name in files_a else b}"]
            continue
        pa, pb = a / name, b / name
        if pa.read_bytes() == pb.read_bytes():
            continue
        if name.endswith(".onnx"):
            report[name] = diff_graphs(pa, pb)
        elif name.endswith(".json"):
            report[name] = diff_json(pa, pb)
        elif name.endswith(".safetensors"):
            report[name] = diff_safetensors(pa, pb)
        else:
            report[name] = ["bytes differ"]
    return report


def describe_differences(report: dict[str, list[str]]) -> str:
    """The report of :func:`diff_model_dirs` as text, one file per paragraph."""
    return "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in report.items())
