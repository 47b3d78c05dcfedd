# kind: mistake
# why: reads a stride pair as (column stride, row stride)
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return (total // 2, total - total // 2)


def _pads(x, w, stride, padding):
    sh, sw = _pair(stride)
    if isinstance(padding, str):
        if padding.lower() == "same":
            return _same(x.shape[0], w.shape[0], sh), _same(x.shape[1], w.shape[1], sw)
        return (0, 0), (0, 0)
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def _correlate(x, w, sh, sw):
    kh, kw = w.shape[:2]
    oh = (x.shape[0] - kh) // sh + 1
    ow = (x.shape[1] - kw) // sw + 1
    out = np.zeros((oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return out


def conv2d(x, w, stride=1, padding=0):
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    (t, b), (l, r) = _pads(x, w, stride, padding)
    x = np.pad(x, ((t, b), (l, r), (0, 0)))
    sw, sh = _pair(stride)
    return _correlate(x, w, sh, sw)
