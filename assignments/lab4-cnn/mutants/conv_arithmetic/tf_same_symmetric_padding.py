# kind: mistake
# why: TensorFlow's "same" computed as symmetric padding of same_padding(k): one too many for even kernels when the stride divides n
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - (k + (k - 1) * (dilation - 1))) // stride + 1


def same_padding(k):
    return k // 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.lower() == "same":
        return conv_output_size(n, k, stride, padding=same_padding(k))
    return conv_output_size(n, k, stride)
