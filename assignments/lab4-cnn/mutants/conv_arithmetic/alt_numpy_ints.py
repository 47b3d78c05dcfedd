# kind: alternative
# why: numpy arithmetic returning numpy integers (they arrive as plain ints)
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return np.int64(np.floor((n + 2 * padding - k - (k - 1) * (dilation - 1)) / stride) + 1)


def same_padding(k):
    return np.int64((k - 1) // 2)


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.upper() == "SAME":
        return np.int64(np.ceil(n / stride))
    return np.int64(np.ceil((n - k + 1) / stride))
