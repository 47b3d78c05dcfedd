# kind: mistake
# why: slides the window one step at a time whatever the stride
def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), padding)
    k = len(w)
    return np.array([x[i : i + k] @ w for i in range(len(x) - k + 1)])
