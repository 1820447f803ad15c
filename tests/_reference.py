"""Reference implementations and worked examples shared by the kernel and layer tests.

Everything here is computed independently of jaxdl: plain numpy loops over the
definitions, in float64, and the course's worked examples copied verbatim.
"""

import math

import numpy as np

# ------------------------------------------------------------------------- references

def _ref_pads(size, eff, stride, padding):
    """Pads along one axis, computed independently of jaxdl (TF "same" rule)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + eff - size, 0)
        return total // 2, total - total // 2
    return padding


def _ref_axis_pads(padding, i):
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return (padding, padding)
    p = padding[i]
    return (p, p) if isinstance(p, int) else tuple(p)


def conv2d_reference(x, w, strides=(1, 1), padding="valid", dilation=(1, 1), groups=1):
    """The definition, in float64, one output pixel at a time."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, c = x.shape
    fh, fw, cg, o = w.shape
    axes = zip((h, wd), (fh, fw), strides, dilation, strict=True)
    pads = [_ref_pads(size, d * (f - 1) + 1, s, _ref_axis_pads(padding, i))
            for i, (size, f, s, d) in enumerate(axes)]
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh = (xp.shape[1] - dilation[0] * (fh - 1) - 1) // strides[0] + 1
    ow = (xp.shape[2] - dilation[1] * (fw - 1) - 1) // strides[1] + 1
    og = o // groups
    y = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            for out_c in range(o):
                g = out_c // og
                acc = np.zeros(n)
                for a in range(fh):
                    for b in range(fw):
                        patch = xp[:, i * strides[0] + a * dilation[0],
                                   j * strides[1] + b * dilation[1], g * cg:(g + 1) * cg]
                        acc += patch @ w[a, b, :, out_c]
                y[:, i, j, out_c] = acc
    return y


def pool_reference(x, pool, strides, padding, kind):
    x = np.asarray(x, np.float64)
    n, h, wd, c = x.shape
    pads = [_ref_pads(size, f, s, _ref_axis_pads(padding, i))
            for i, (size, f, s) in enumerate(zip((h, wd), pool, strides, strict=True))]
    oh = (h + sum(pads[0]) - pool[0]) // strides[0] + 1
    ow = (wd + sum(pads[1]) - pool[1]) // strides[1] + 1
    y = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * strides[0] - pads[0][0], j * strides[1] - pads[1][0]
            win = x[:, max(r0, 0):min(r0 + pool[0], h), max(c0, 0):min(c0 + pool[1], wd)]
            y[:, i, j] = win.max(axis=(1, 2)) if kind == "max" else win.mean(axis=(1, 2))
    return y


def conv2d_transpose_reference(x, w, strides, padding, dilation=(1, 1)):
    """Scatter definition: every input pixel adds a scaled copy of the kernel."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, c = x.shape
    fh, fw, _, o = w.shape
    eff = [d * (f - 1) + 1 for d, f in zip(dilation, (fh, fw), strict=True)]
    full = np.zeros((n, (h - 1) * strides[0] + eff[0], (wd - 1) * strides[1] + eff[1], o))
    for i in range(h):
        for j in range(wd):
            for a in range(fh):
                for b in range(fw):
                    full[:, i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1]] \
                        += x[:, i, j] @ w[a, b]
    if padding == "valid":
        return full
    out = []
    for size, s, e in zip((h, wd), strides, eff, strict=True):
        before = max(e - s, 0) // 2
        out.append((before, before + size * s))
    full = np.pad(full, ((0, 0), (0, max(0, out[0][1] - full.shape[1])),
                         (0, max(0, out[1][1] - full.shape[2])), (0, 0)))
    return full[:, out[0][0]:out[0][1], out[1][0]:out[1][1]]


# ------------------------------------------------------------------------- the course

# Notes 001, "The depth in convolution layer": a 9x9 binary image, a 3x3 all-ones filter and
# the 7x7 activation map, copied verbatim. (The notes' second 7x7 map on the next slide,
# starting "3 4 3 2 3 3 3", belongs to a different filter that the notes do not show.)
BINARY_9x9 = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
                       [0, 1, 1, 1, 0, 0, 1, 1, 0],
                       [0, 1, 1, 0, 1, 0, 1, 1, 0],
                       [0, 1, 0, 0, 1, 1, 1, 0, 0],
                       [0, 0, 0, 0, 0, 0, 1, 1, 0],
                       [0, 1, 1, 0, 0, 0, 0, 1, 0],
                       [0, 1, 0, 0, 1, 1, 1, 0, 0],
                       [0, 1, 1, 1, 0, 0, 1, 1, 0],
                       [0, 0, 0, 0, 0, 0, 0, 0, 0]], np.float32)
ACTIVATION_7x7 = np.array([[4, 5, 4, 2, 3, 4, 4],
                           [5, 6, 5, 4, 6, 6, 5],
                           [3, 3, 3, 3, 6, 6, 5],
                           [3, 3, 2, 2, 4, 5, 4],
                           [3, 3, 2, 2, 4, 5, 4],
                           [5, 6, 4, 3, 4, 5, 4],
                           [3, 4, 3, 3, 4, 4, 3]], np.float32)


# Notes 001, "Max Pooling": a 5x5 feature map pooled 2x2 with stride 2 to a 3x3 map; the
# last row and column are windows hanging over the edge, i.e. "same" padding.
FEATURE_MAP_5x5 = np.array([[0, 1, 0, 0, 0],
                            [0, 1, 1, 1, 0],
                            [1, 0, 1, 2, 1],
                            [1, 4, 2, 1, 0],
                            [0, 0, 1, 2, 1]], np.float32)
