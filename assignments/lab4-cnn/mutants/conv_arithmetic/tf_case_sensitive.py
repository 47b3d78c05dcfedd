# kind: mistake
# why: compares the padding string case-sensitively, so 'SAME' is treated as VALID
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - k - (k - 1) * (dilation - 1)) // stride + 1


def same_padding(k):
    return k // 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding == "same":
        return -(-n // stride)
    return -(-(n - k + 1) // stride)
