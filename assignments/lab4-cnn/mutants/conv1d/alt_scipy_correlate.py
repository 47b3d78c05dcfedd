# kind: alternative
# why: scipy.signal.correlate in 'valid' mode is a cross-correlation; taking every stride-th output is the strided version
from scipy import signal


def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), padding)
    full = signal.correlate(x, np.asarray(w, dtype=float), mode="valid")
    return full[::stride]
