# kind: mistake
# why: counts the dense layer's weights but forgets its biases
def conv_matrix(w, input_shape):
    w = np.asarray(w, dtype=float)
    H, W = input_shape
    kh, kw = w.shape
    oh, ow = H - kh + 1, W - kw + 1
    M = np.zeros((oh * ow, H * W))
    for r in range(oh):
        for c in range(ow):
            for i in range(kh):
                for j in range(kw):
                    M[r * ow + c, (r + i) * W + (c + j)] = w[i, j]
    return M


def conv_vs_dense_params(input_shape, filters, kernel_size):
    H, W, C = input_shape
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    conv = kh * kw * C * filters + filters
    out_units = (H - kh + 1) * (W - kw + 1) * filters
    dense = H * W * C * out_units
    return conv, dense
