# kind: mistake
# why: pads zeros only at the start of the signal, not on both ends
def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), (padding, 0))
    k = len(w)
    n_out = (len(x) - k) // stride + 1
    return np.array([x[i * stride : i * stride + k] @ w for i in range(n_out)])
