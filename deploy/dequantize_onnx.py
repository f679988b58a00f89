#!/usr/bin/env python3
"""Turn a weight-quantized ONNX model into a plain fp32 one that OpenCV 4.6 can load.

Usage: dequantize_onnx.py IN.onnx OUT.onnx

Every DequantizeLinear node whose inputs are all constant initializers is evaluated
once here and replaced by an fp32 initializer carrying the node's output name. Handled:
per-tensor (scalar scale), per-axis (1-D scale along `axis`) and blocked quantization
(`block_size` > 0: scale and zero point have x's rank, x.shape[axis] is cut into blocks
of `block_size` along `axis`, one scale per block). A Reshape whose inputs are then both
initializers is folded as well, so the weights reach Conv/Gemm as plain initializers as
in the original fp32 export. Initializers nothing uses any more, graph inputs nothing
reads and value_info entries for removed tensors are dropped; a `conversion` metadata
entry records the change. Nothing else changes.

Deterministic: the same input gives byte-identical output (the fetch script pins it by
sha256). Needs only the `onnx` package (and its numpy).
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def expand_along(param, axis, size, block_size):
    """Repeat each entry of a blocked scale/zero-point block_size times along axis."""
    return np.repeat(param, block_size, axis=axis).take(np.arange(size), axis=axis)


def dequantize(node, x, scale, zero_point):
    if scale.dtype.kind != "f":
        raise ValueError(f"{node.name}: scale of type {scale.dtype} is not floating point")
    out_dtype = scale.dtype
    output_dtype = attr(node, "output_dtype", 0)
    if output_dtype:
        out_dtype = helper.tensor_dtype_to_np_dtype(output_dtype)
    block_size = attr(node, "block_size", 0)
    axis = attr(node, "axis", 1)

    if x.dtype.kind in "iu":
        xv = x.astype(np.int64)
        zp = np.zeros((), np.int64) if zero_point is None else zero_point.astype(np.int64)
    else:  # float8 and the like: the zero point must be zero
        xv = x.astype(np.float32)
        zp = np.zeros((), np.float32) if zero_point is None else zero_point.astype(np.float32)
    scale = scale.astype(np.float32)

    if scale.size == 1 and block_size == 0 and scale.ndim <= 1:  # per tensor
        scale = scale.reshape(())
        zp = zp.reshape(())
    else:
        if x.ndim == 0:
            raise ValueError(f"{node.name}: a scalar x needs a scalar scale")
        if axis < 0:
            axis += x.ndim
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{node.name}: axis {axis} out of range for rank {x.ndim}")
        if block_size > 0:  # blocked: scale has x's rank
            n_blocks = -(-x.shape[axis] // block_size)
            want = list(x.shape)
            want[axis] = n_blocks
            if list(scale.shape) != want:
                raise ValueError(f"{node.name}: blocked scale shape {scale.shape}, expected {want}")
            scale = expand_along(scale, axis, x.shape[axis], block_size)
            if zp.ndim > 0:
                if list(zp.shape) != want:
                    raise ValueError(f"{node.name}: zero point shape {zp.shape}, expected {want}")
                zp = expand_along(zp, axis, x.shape[axis], block_size)
        else:  # per axis: 1-D scale of length x.shape[axis]
            if scale.ndim != 1 or scale.shape[0] != x.shape[axis]:
                raise ValueError(f"{node.name}: per-axis scale shape {scale.shape} "
                                 f"does not match axis {axis} of {x.shape}")
            bshape = [1] * x.ndim
            bshape[axis] = x.shape[axis]
            scale = scale.reshape(bshape)
            if zp.ndim > 0:
                zp = zp.reshape(bshape)

    y = (xv - zp).astype(np.float32) * scale
    return y.astype(out_dtype)


def reshape(node, data, shape):
    allowzero = attr(node, "allowzero", 0)
    shape = [int(d) for d in shape]
    if not allowzero:
        shape = [data.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return data.reshape(shape)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: dequantize_onnx.py IN.onnx OUT.onnx")
    src, dst = sys.argv[1], sys.argv[2]
    model = onnx.load(src)
    graph = model.graph

    consts = {t.name: t for t in graph.initializer}
    new_inits = []
    keep_nodes = []
    folded = {"DequantizeLinear": 0, "Reshape": 0}

    def value(name):
        return numpy_helper.to_array(consts[name])

    for node in graph.node:
        inputs = [i for i in node.input]
        all_const = all(i == "" or i in consts for i in inputs)
        if node.domain in ("", "ai.onnx") and node.op_type == "DequantizeLinear" and all_const:
            x = value(inputs[0])
            scale = value(inputs[1])
            zp = value(inputs[2]) if len(inputs) > 2 and inputs[2] else None
            y = dequantize(node, x, scale, zp)
        elif (node.domain in ("", "ai.onnx") and node.op_type == "Reshape" and all_const
              and len(inputs) == 2):
            y = reshape(node, value(inputs[0]), value(inputs[1]))
        else:
            keep_nodes.append(node)
            continue
        folded[node.op_type] += 1
        t = numpy_helper.from_array(np.ascontiguousarray(y), node.output[0])
        consts[t.name] = t
        new_inits.append(t)

    if folded["DequantizeLinear"] == 0:
        sys.exit(f"dequantize_onnx: no constant DequantizeLinear in {src}")

    # What is still read: node inputs (including subgraphs' outer-scope names) and outputs.
    used = {o.name for o in graph.output}

    def collect(g):
        for n in g.node:
            used.update(i for i in n.input if i)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    collect(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        collect(sg)

    del graph.node[:]
    graph.node.extend(keep_nodes)
    collect(graph)

    inits = [t for t in graph.initializer if t.name in used] + [t for t in new_inits if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    init_names = {t.name for t in inits}

    inputs = [i for i in graph.input if i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)

    produced = {o for n in graph.node for o in n.output}
    vinfo = [v for v in graph.value_info if v.name in produced and v.name not in init_names]
    del graph.value_info[:]
    graph.value_info.extend(vinfo)

    left = [n.op_type for n in graph.node if n.op_type in ("DequantizeLinear", "QuantizeLinear")]
    if left:
        sys.exit(f"dequantize_onnx: {len(left)} (de)quantize nodes with non-constant inputs left")

    # Apache-2.0 4(b): a modified file says that it was changed.
    onnx.helper.set_model_props(model, dict(
        [(p.key, p.value) for p in model.metadata_props]
        + [("conversion", "modified from " + os.path.basename(src) + ": DequantizeLinear weights "
            "folded to float32 constants by kefu deploy/dequantize_onnx.py")]))

    with open(dst, "wb") as f:
        f.write(model.SerializeToString())
    print(f"dequantize_onnx: {src} -> {dst}: folded {folded['DequantizeLinear']} DequantizeLinear, "
          f"{folded['Reshape']} Reshape; {len(graph.node)} nodes left")


if __name__ == "__main__":
    main()
