# kind: mistake
# why: the sizes by true division (Relationship 6 as written): the counts come back as floats, not the ints asked for
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
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else tuple(kernel_size)
    oh, ow = (H - kh) / 1 + 1, (W - kw) / 1 + 1
    n_out = oh * ow * filters
    conv = kh * kw * C * filters + filters
    dense = H * W * C * n_out + n_out
    return conv, dense
