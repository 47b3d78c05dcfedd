# kind: alternative
# why: explicit loops over output pixels and channels with Python max / sum
def _pool(x, pool_size, stride, reduce):
    x = np.asarray(x, dtype=float)
    ph, pw = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    if stride is None:
        stride = (ph, pw)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    H, W, C = x.shape
    oh = (H - ph) // sh + 1
    ow = (W - pw) // sw + 1
    out = np.zeros((oh, ow, C))
    for i in range(oh):
        for j in range(ow):
            for c in range(C):
                vals = [x[i * sh + a, j * sw + b, c] for a in range(ph) for b in range(pw)]
                out[i, j, c] = reduce(vals)
    return out


def max_pool2d(x, pool_size=2, stride=None):
    return _pool(x, pool_size, stride, max)


def avg_pool2d(x, pool_size=2, stride=None):
    return _pool(x, pool_size, stride, lambda v: sum(v) / len(v))
