# kind: mistake
# why: same_padding with true division returns the float 1.0, not the int the task asks for
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    k_eff = k + (k - 1) * (dilation - 1)
    return (n + 2 * padding - k_eff) // stride + 1


def same_padding(k):
    return (k - 1) / 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.upper() == "SAME":
        return -(-n // stride)
    return -(-(n - k + 1) // stride)
