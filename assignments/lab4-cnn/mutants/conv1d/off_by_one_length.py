# kind: mistake
# why: output length (n + 2p - k) // s, forgetting the + 1, so the last window is dropped
def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), padding)
    k = len(w)
    n_out = (len(x) - k) // stride
    return np.array([x[i * stride : i * stride + k] @ w for i in range(n_out)])
