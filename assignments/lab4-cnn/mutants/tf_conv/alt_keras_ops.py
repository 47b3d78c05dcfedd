# kind: alternative
# why: keras.ops.conv (backend-neutral, lowercase padding) for both functions, converted to numpy
def tf_conv2d(images, kernels, stride=1, padding="VALID"):
    out = keras.ops.conv(
        np.asarray(images, "float32"),
        np.asarray(kernels, "float32"),
        strides=stride,
        padding=padding.lower(),
    )
    return keras.ops.convert_to_numpy(out)


def sobel_edges(images):
    gx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], "float32")
    kernel = np.zeros((3, 3, 1, 2), "float32")
    kernel[:, :, 0, 0] = gx
    kernel[:, :, 0, 1] = gx.T
    return tf_conv2d(images, kernel, padding="same")
