# kind: alternative
# why: column j is the valid cross-correlation of the j-th one-hot image (scipy.signal.correlate2d), params via a helper
from scipy.signal import correlate2d


def conv_matrix(w, input_shape):
    H, W = input_shape
    cols = []
    for j in range(H * W):
        e = np.zeros(H * W)
        e[j] = 1.0
        cols.append(correlate2d(e.reshape(H, W), w, mode="valid").ravel())
    return np.stack(cols, axis=1)


def conv_vs_dense_params(input_shape, filters, kernel_size):
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    kh, kw = kernel_size
    H, W, C = input_shape
    out_units = (H - kh + 1) * (W - kw + 1) * filters
    return (kh * kw * C + 1) * filters, (H * W * C + 1) * out_units
