# kind: alternative
# why: vectorised with sliding_window_view over (H, W), every stride-th window, reduced over the window axes
def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def _windows(x, pool_size, stride):
    ph, pw = _pair(pool_size)
    sh, sw = (ph, pw) if stride is None else _pair(stride)
    w = np.lib.stride_tricks.sliding_window_view(np.asarray(x, float), (ph, pw), axis=(0, 1))
    return w[::sh, ::sw]  # (H_out, W_out, C, ph, pw)


def max_pool2d(x, pool_size=2, stride=None):
    return _windows(x, pool_size, stride).max(axis=(-2, -1))


def avg_pool2d(x, pool_size=2, stride=None):
    return _windows(x, pool_size, stride).mean(axis=(-2, -1))
