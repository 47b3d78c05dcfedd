# kind: alternative
# why: math.floor / math.ceil on true division; VALID written as floor((n - k) / s) + 1, which equals ceil((n - k + 1) / s)
import math


def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    k_eff = dilation * (k - 1) + 1
    return math.floor((n + 2 * padding - k_eff) / stride) + 1


def same_padding(k):
    return (k - 1) // 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.lower() == "same":
        return math.ceil(n / stride)
    return math.floor((n - k) / stride) + 1
