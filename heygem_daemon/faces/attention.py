"""MediaPipe's attention face mesh on LiteRT, its three custom operators done in numpy.

``face_landmark_with_attention.tflite`` (the model behind mediapipe's
``refine_landmarks``) refines lips, eyes and irises inside the network: it
computes a crop matrix for each from the coarse mesh
(``Landmarks2TransformMatrix``), samples its feature map through it
(``TransformTensorBilinear``), runs a small network per region and maps the
results back (``TransformLandmarks``).  Those three are MediaPipe custom
operators that LiteRT does not have, so the model is cut at them: each stage
between custom operators becomes a model of its own (same weights, fewer
operators), and the operators run here, as MediaPipe's C++ kernels
(mediapipe/util/tflite/operations/) define them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

CUSTOM = ("Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks")


@dataclass
class _Stage:
    interpreter: object
    inputs: list[tuple[int, int]]  # (model tensor, interpreter input index)
    outputs: list[tuple[int, int]]  # (model tensor, interpreter output index)


@dataclass
class _CustomOp:
    name: str
    inputs: list[int]
    output: int
    options: dict


@dataclass
class _Samplers:
    """TransformTensorBilinear operators in a row on one feature map with the same options (the
    lips and the two eyes): sampled in one call, a third of the per-call overhead."""

    data: int
    matrices: list[int]
    outputs: list[int]
    options: dict


class AttentionMesh:
    """Runs the attention mesh on one 192x192 RGB crop in [0, 1]; outputs by name."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        from ai_edge_litert import schema_py_generated as schema

        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
        graph = model.subgraphs[0]
        self._names = {int(t): _name(graph.tensors[t]) for t in graph.outputs}
        self._input = int(graph.inputs[0])
        self._steps: list[_Stage | _CustomOp | _Samplers] = []
        constant = {i for i, t in enumerate(graph.tensors) if _is_constant(model, t)}
        folded = _constant_ops(model, graph, constant)  # e.g. float16 weights -> DEQUANTIZE
        derived = constant | {int(t) for i in folded for t in graph.operators[i].outputs}
        pending = [i for i in range(len(graph.operators)) if i not in folded]
        available = {self._input} | derived
        consumers = _consumers(graph)
        while pending:
            stage_ops, available = _runnable(model, graph, pending, available)
            if stage_ops:
                with_weights = _with_producers(graph, stage_ops, folded)
                self._steps.append(_build_stage(model, schema, graph, with_weights, consumers, derived, threads))
                pending = [i for i in pending if i not in stage_ops]
            customs = [i for i in pending if _custom_name(model, graph.operators[i]) and
                       all(int(t) in available for t in graph.operators[i].inputs)]
            if not customs and not stage_ops:
                raise RuntimeError("attention mesh: operators left that cannot run")
            for index in customs:
                op = graph.operators[index]
                self._steps.append(_CustomOp(_custom_name(model, op), [int(t) for t in op.inputs],
                                             int(op.outputs[0]), _options(op)))
                available = available | {int(op.outputs[0])}
            pending = [i for i in pending if i not in customs]
        self._steps = _grouped(self._steps)

    def __call__(self, image: np.ndarray) -> dict[str, np.ndarray]:
        values = {self._input: image[None].astype(np.float32)}
        for step in self._steps:
            if isinstance(step, _Stage):
                for tensor, index in step.inputs:
                    step.interpreter.set_tensor(index, values[tensor])
                step.interpreter.invoke()
                for tensor, index in step.outputs:
                    values[tensor] = step.interpreter.get_tensor(index)
            elif isinstance(step, _Samplers):
                matrices = [values[t].reshape(4, 4) for t in step.matrices]
                for tensor, out in zip(step.outputs, _transform_tensors(values[step.data], matrices, step.options)):
                    values[tensor] = out
            else:
                values[step.output] = _run_custom(step, [values[t] for t in step.inputs])
        return {name: values[tensor] for tensor, name in self._names.items()}


def _grouped(steps: list[_Stage | _CustomOp | _Samplers]) -> list[_Stage | _CustomOp | _Samplers]:
    """``steps`` with each run of samplers of one feature map (same options) made one ``_Samplers``."""
    out: list[_Stage | _CustomOp | _Samplers] = []
    for step in steps:
        if isinstance(step, _CustomOp) and step.name == "TransformTensorBilinear":
            last = out[-1] if out else None
            if isinstance(last, _Samplers) and last.data == step.inputs[0] and last.options == step.options:
                last.matrices.append(step.inputs[1])
                last.outputs.append(step.output)
                continue
            out.append(_Samplers(step.inputs[0], [step.inputs[1]], [step.output], step.options))
            continue
        out.append(step)
    return out


def _name(tensor) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def _is_constant(model, tensor) -> bool:
    buffer = model.buffers[tensor.buffer] if tensor.buffer else None
    return buffer is not None and buffer.data is not None and len(buffer.data) > 0


def _custom_name(model, op) -> str | None:
    code = model.operatorCodes[op.opcodeIndex].customCode
    if code is None:
        return None
    code = code.decode() if isinstance(code, bytes) else str(code)
    return code if code in CUSTOM else None


def _constant_ops(model, graph, constant: set[int]) -> set[int]:
    """Operators computed from constants alone (weight dequantisation): they go with their users."""
    known, folded = set(constant), set()
    changed = True
    while changed:
        changed = False
        for index, op in enumerate(graph.operators):
            if index in folded or _custom_name(model, op):
                continue
            if all(int(t) < 0 or int(t) in known for t in op.inputs):
                folded.add(index)
                known |= {int(t) for t in op.outputs}
                changed = True
    return folded


def _with_producers(graph, ops: list[int], folded: set[int]) -> list[int]:
    """``ops`` plus the constant-only operators whose outputs they read (transitively)."""
    producer = {int(t): i for i in folded for t in graph.operators[i].outputs}
    chosen, todo = set(ops), list(ops)
    while todo:
        for t in graph.operators[todo.pop()].inputs:
            index = producer.get(int(t))
            if index is not None and index not in chosen:
                chosen.add(index)
                todo.append(index)
    return sorted(chosen)


def _consumers(graph) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for index, op in enumerate(graph.operators):
        for t in op.inputs:
            out.setdefault(int(t), set()).add(index)
    return out


def _runnable(model, graph, pending: list[int], available: set[int]) -> tuple[list[int], set[int]]:
    """Non-custom operators that can run from ``available`` tensors, in order, and what they make."""
    chosen: list[int] = []
    available = set(available)
    changed = True
    while changed:
        changed = False
        for index in pending:
            op = graph.operators[index]
            if index in chosen or _custom_name(model, op):
                continue
            if all(int(t) < 0 or int(t) in available for t in op.inputs):
                chosen.append(index)
                available |= {int(t) for t in op.outputs}
                changed = True
    return sorted(chosen), available


def _build_stage(model, schema, graph, ops: list[int], consumers, constant, threads: int) -> _Stage:
    import flatbuffers
    from ai_edge_litert.interpreter import Interpreter

    produced = {int(t) for i in ops for t in graph.operators[i].outputs}
    needed = {int(t) for i in ops for t in graph.operators[i].inputs if int(t) >= 0}
    inputs = sorted(needed - produced - constant)
    final = {int(t) for t in graph.outputs}
    outputs = sorted(t for t in produced - constant if t in final or consumers.get(t, set()) - set(ops))
    part = copy.copy(model)
    sub = copy.copy(graph)
    sub.operators = [graph.operators[i] for i in ops]
    sub.inputs = np.array(inputs, dtype=np.int32)
    sub.outputs = np.array(outputs, dtype=np.int32)
    part.subgraphs = [sub]
    part.signatureDefs = []
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(part.Pack(builder), file_identifier=b"TFL3")
    interpreter = Interpreter(model_content=bytes(builder.Output()), num_threads=threads)
    interpreter.allocate_tensors()
    by_name_in = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    by_name_out = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    return _Stage(interpreter,
                  [(t, by_name_in[_name(graph.tensors[t])]) for t in inputs],
                  [(t, by_name_out[_name(graph.tensors[t])]) for t in outputs])


def _options(op) -> dict:
    if op.customOptions is None or len(op.customOptions) == 0:
        return {}
    from flatbuffers import flexbuffers

    return flexbuffers.Loads(bytes(np.asarray(op.customOptions, dtype=np.uint8)))


def _run_custom(step: _CustomOp, args: list[np.ndarray]) -> np.ndarray:
    if step.name == "Landmarks2TransformMatrix":
        return _landmarks_to_matrix(args[0].reshape(-1, 3), step.options)
    if step.name == "TransformTensorBilinear":
        return _transform_tensor(args[0], args[1].reshape(4, 4), step.options)
    return _transform_landmarks(args[0], args[1].reshape(4, 4))


# The operators run eleven times a frame on tiny arrays (80 points, 16x16 samples), so their
# cost is numpy's per-call overhead more than arithmetic: the versions below make fewer,
# larger calls, keep the kernels' float32/float64 steps where rounding could show, and
# give the same outputs as the straightforward ones to float32 rounding (tests/faces).


def _landmarks_to_matrix(marks: np.ndarray, o: dict) -> np.ndarray:
    """MediaPipe LandmarksToTransformMatrixV2: output grid -> landmark space, as a 4x4 matrix.

    The product shift @ rotate(-r) @ scale @ shift(-out/2) written out: its
    non-trivial entries are single products (exact), the translation one sum."""
    left, right = marks[o["left_rotation_idx"]], marks[o["right_rotation_idx"]]
    # float32, as the kernel (and numpy's scalar rules) compute the angle
    rotation = np.float32(o.get("target_rotation_radians", 0.0)) - np.arctan2(right[1] - left[1],
                                                                             right[0] - left[0])
    cos, sin = np.cos(rotation), np.sin(rotation)
    pts = marks[_subset(o), :2].astype(np.float64)
    turned_x = pts[:, 0] * cos - pts[:, 1] * sin  # R @ p
    turned_y = pts[:, 0] * sin + pts[:, 1] * cos
    lo_x, hi_x, lo_y, hi_y = turned_x.min(), turned_x.max(), turned_y.min(), turned_y.max()
    mid_x, mid_y = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    cx, cy = cos * mid_x + sin * mid_y, -sin * mid_x + cos * mid_y  # R(-r) @ mid
    out_w, out_h = o["output_width"], o["output_height"]
    c, s = np.cos(-rotation), np.sin(-rotation)
    sx, sy = o["scale_x"] * (hi_x - lo_x) / out_w, o["scale_y"] * (hi_y - lo_y) / out_h
    half_w, half_h = -out_w / 2.0, -out_h / 2.0
    matrix = np.array([[c * sx, -s * sy, 0.0, c * sx * half_w + -s * sy * half_h + cx],
                       [s * sx, c * sy, 0.0, s * sx * half_w + c * sy * half_h + cy],
                       [0.0, 0.0, 1.0, 0.0],
                       [0.0, 0.0, 0.0, 1.0]], dtype=np.float64)
    return matrix.astype(np.float32).reshape(1, 4, 4)


def _subset(o: dict) -> np.ndarray:
    """The operator's landmark subset as an index array, made once per operator."""
    subset = o.get("_subset_array")
    if subset is None:
        subset = o["_subset_array"] = np.asarray(o["subset_idxs"], dtype=np.intp).reshape(-1)
    return subset


def _transform_tensor(data: np.ndarray, matrix: np.ndarray, o: dict) -> np.ndarray:
    """MediaPipe TransformTensorBilinearV2: sample ``data`` (1, H, W, C) on the matrix's grid."""
    return _transform_tensors(data, [matrix], o)[0]


def _transform_tensors(data: np.ndarray, matrices: list[np.ndarray], o: dict) -> list[np.ndarray]:
    """``_transform_tensor`` for several matrices on one map, in one pass (each sample's arithmetic
    is the same as alone).

    The same arithmetic as the kernel (float64 coordinates, reads past the edge
    are 0).  A sample inside the map reads its right/lower neighbour only with
    weight 0 when it sits on the last column/row, so that read is clamped to the
    map instead of going to a zero-padded copy (same result, no copy); samples
    outside are zeroed at the end."""
    _, height, width, channels = data.shape
    out_h, out_w = o["output_height"], o["output_width"]
    stacked = np.stack(matrices).astype(np.float64)
    xt, yt = stacked[:, 0, :, None], stacked[:, 1, :, None]  # (k, 4, 1) each
    xs, ys = _grid(out_h, out_w)
    tx = (xt[:, 0] * xs + xt[:, 1] * ys + (xt[:, 3] + (xt[:, 0] * 0.5 + xt[:, 1] * 0.5 - 0.5))).reshape(-1)
    ty = (yt[:, 0] * xs + yt[:, 1] * ys + (yt[:, 3] + (yt[:, 0] * 0.5 + yt[:, 1] * 0.5 - 0.5))).reshape(-1)
    inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
    x0, y0 = np.floor(tx), np.floor(ty)
    fx, fy = (tx - x0)[:, None], (ty - y0)[:, None]
    flat = data.reshape(-1, channels)
    xi = np.clip(x0, 0, width - 1).astype(np.intp)
    yi = np.clip(y0, 0, height - 1).astype(np.intp)
    right = np.minimum(xi + 1, width - 1) - xi  # 0 on the last column
    down = (np.minimum(yi + 1, height - 1) - yi) * width
    top = yi * width + xi
    # the four neighbours in one gather and one cast; then, in place and in the kernel's order,
    # (1 - fy) * ((1 - fx) * q11 + fx * q21) + fy * ((1 - fx) * q12 + fx * q22)
    q = np.take(flat, np.stack([top, top + right, top + down, top + down + right]), axis=0).astype(np.float64)
    q11, q21, q12, q22 = q
    q11 *= 1 - fx
    q21 *= fx
    q11 += q21
    q12 *= 1 - fx
    q22 *= fx
    q12 += q22
    q11 *= 1 - fy
    q12 *= fy
    q11 += q12
    q11[~inside] = 0.0
    return list(q11.astype(np.float32).reshape(len(matrices), 1, out_h, out_w, channels))


@lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat (x, y) float64 coordinates of a height x width grid, row by row."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return xs.reshape(-1), ys.reshape(-1)


def _transform_landmarks(marks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """MediaPipe TransformLandmarksV2: (1, N, 2) points through the matrix's first two rows."""
    pts = marks.reshape(-1, 2).astype(np.float64)
    m = matrix.astype(np.float64)
    out = np.empty_like(pts)
    out[:, 0] = m[0, 0] * pts[:, 0] + m[0, 1] * pts[:, 1] + m[0, 3]
    out[:, 1] = m[1, 0] * pts[:, 0] + m[1, 1] * pts[:, 1] + m[1, 3]
    return out.reshape(marks.shape).astype(np.float32)
