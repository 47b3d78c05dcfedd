# kind: alternative
# why: each row places the kernel into a zero image at its output position and flattens it; returns a list pair
def conv_matrix(w, input_shape):
    w = np.asarray(w, dtype=float)
    H, W = input_shape
    kh, kw = w.shape
    rows = []
    for r in range(H - kh + 1):
        for c in range(W - kw + 1):
            img = np.zeros((H, W))
            img[r : r + kh, c : c + kw] = w
            rows.append(img.reshape(-1))
    return np.array(rows)


def conv_vs_dense_params(input_shape, filters, kernel_size):
    kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
    H, W, C = input_shape
    conv = kh * kw * C * filters + filters
    n_in = H * W * C
    n_out = (H - kh + 1) * (W - kw + 1) * filters
    return [conv, n_in * n_out + n_out]
