# kind: mistake
# why: numpy arithmetic returning floats with integral values (5.0 instead of the int 5 the task asks for)
def conv_output_size(n, k, stride=1, padding=0, dilation=1):
    return np.floor((n + 2 * padding - k - (k - 1) * (dilation - 1)) / stride) + 1


def same_padding(k):
    return (k - 1) // 2


def tf_output_size(n, k, stride=1, padding="valid"):
    if padding.upper() == "SAME":
        return int(np.ceil(n / stride))
    return int(np.ceil((n - k + 1) / stride))
