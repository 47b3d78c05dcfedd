# kind: alternative
# why: explicit loops over output pixels and output channels, 'same' pads computed from the output size
import math


def conv2d(x, w, stride=1, padding=0):
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    H, W, C = x.shape
    kh, kw, _, F = w.shape
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    if isinstance(padding, str) and padding.lower() == "same":
        oh, ow = math.ceil(H / sh), math.ceil(W / sw)
        th = max((oh - 1) * sh + kh - H, 0)
        tw = max((ow - 1) * sw + kw - W, 0)
        top, left = th // 2, tw // 2
        xp = np.zeros((H + th, W + tw, C))
        xp[top : top + H, left : left + W] = x
    else:
        if isinstance(padding, str):
            ph = pw = 0
        elif np.isscalar(padding):
            ph = pw = padding
        else:
            ph, pw = padding
        xp = np.zeros((H + 2 * ph, W + 2 * pw, C))
        xp[ph : ph + H, pw : pw + W] = x
    oh = (xp.shape[0] - kh) // sh + 1
    ow = (xp.shape[1] - kw) // sw + 1
    out = np.zeros((oh, ow, F))
    for i in range(oh):
        for j in range(ow):
            patch = xp[i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            for f in range(F):
                out[i, j, f] = np.sum(patch * w[:, :, :, f])
    return out
