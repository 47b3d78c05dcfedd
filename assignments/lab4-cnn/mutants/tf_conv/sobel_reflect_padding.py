# kind: mistake
# why: pads the image by reflection instead of zeros before a VALID convolution
def tf_conv2d(images, kernels, stride=1, padding="VALID"):
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    kernels = tf.cast(tf.convert_to_tensor(kernels), tf.float32)
    strides = [stride, stride] if isinstance(stride, int) else list(stride)
    return tf.nn.conv2d(images, kernels, strides=strides, padding=padding.upper())


def sobel_edges(images):
    gx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    gy = gx.T
    kernel = np.stack([gx, gy], axis=-1)[:, :, None, :]
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    images = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return tf.nn.conv2d(images, kernel, strides=1, padding="VALID")
