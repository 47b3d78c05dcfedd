# kind: alternative
# why: vectorised with sliding_window_view, windows taken every stride-th start; returns float32
def conv1d(x, w, stride=1, padding=0):
    x = np.concatenate([np.zeros(padding), np.asarray(x, dtype=np.float32), np.zeros(padding)])
    windows = np.lib.stride_tricks.sliding_window_view(x, len(w))[::stride]
    return (windows @ np.asarray(w, dtype=np.float32)).astype(np.float32)
