# kind: mistake
# why: returns the total padding k - 1 instead of the padding per side
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - k - (k - 1) * (dilation - 1)) // stride + 1


def same_padding(k):
    return k - 1


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.lower() == "same":
        return -(-n // stride)
    return -(-(n - k + 1) // stride)
