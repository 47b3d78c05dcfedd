# kind: mistake
# why: starts each maximum at 0, so windows of negative values give 0
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pool(x, pool_size, stride, op):
    x = np.asarray(x, dtype=float)
    ph, pw = _pair(pool_size)
    sh, sw = (ph, pw) if stride is None else _pair(stride)
    oh = (x.shape[0] - ph) // sh + 1
    ow = (x.shape[1] - pw) // sw + 1
    out = np.zeros((oh, ow, x.shape[2]))
    for i in range(oh):
        for j in range(ow):
            win = x[i * sh : i * sh + ph, j * sw : j * sw + pw, :]
            out[i, j] = np.maximum(0.0, win.max(axis=(0, 1))) if op == "max" else win.mean(axis=(0, 1))
    return out


def max_pool2d(x, pool_size=2, stride=None):
    return _pool(x, pool_size, stride, "max")


def avg_pool2d(x, pool_size=2, stride=None):
    return _pool(x, pool_size, stride, "avg")
