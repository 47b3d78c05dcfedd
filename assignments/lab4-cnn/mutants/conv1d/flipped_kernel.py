# kind: mistake
# why: uses np.convolve, a true convolution that flips the kernel, instead of cross-correlation
def conv1d(x, w, stride=1, padding=0):
    x = np.pad(np.asarray(x, dtype=float), padding)
    return np.convolve(x, w, mode="valid")[::stride]
