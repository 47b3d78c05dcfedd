# kind: mistake
# why: rounds the output length up (ceil) and zero-fills the last partial window
def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), padding)
    k = len(w)
    n_out = int(np.ceil((len(x) - k) / stride)) + 1
    x = np.pad(x, (0, k))
    return np.array([x[i * stride : i * stride + k] @ w for i in range(n_out)])
