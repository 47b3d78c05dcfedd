# kind: alternative
# why: vectorised: explicit np.pad, sliding_window_view over H and W, one einsum over (kh, kw, C_in)
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return (total // 2, total - total // 2)


def conv2d(x, w, stride=1, padding=0):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    kh, kw = w.shape[:2]
    sh, sw = _pair(stride)
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            pads = (_same(x.shape[0], kh, sh), _same(x.shape[1], kw, sw))
        else:
            pads = ((0, 0), (0, 0))
    else:
        ph, pw = _pair(padding)
        pads = ((ph, ph), (pw, pw))
    x = np.pad(x, (*pads, (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))[::sh, ::sw]
    # win: (H_out, W_out, C_in, kh, kw)
    return np.einsum("abcij,ijcd->abd", win, w)
