# kind: mistake
# why: accepts a padding argument but never pads
def conv1d(x, w, stride=1, padding=0):
    x = np.asarray(x, dtype=float)
    k = len(w)
    n_out = (len(x) - k) // stride + 1
    return np.array([x[i * stride : i * stride + k] @ w for i in range(n_out)])
