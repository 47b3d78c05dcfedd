# kind: mistake
# why: forgets the dilation term: uses the undilated kernel size
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - k) // stride + 1


def same_padding(k):
    return k // 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.lower() == "same":
        return -(-n // stride)
    return -(-(n - k + 1) // stride)
