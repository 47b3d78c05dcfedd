# kind: alternative
# why: tf_conv2d with an explicit [1, s_h, s_w, 1] strides list; sobel_edges in numpy via scipy.ndimage.correlate with zero ('constant') borders
from scipy import ndimage


def tf_conv2d(images, kernels, stride=1, padding="VALID"):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    return tf.nn.conv2d(
        tf.constant(np.asarray(images, dtype=np.float32)),
        tf.constant(np.asarray(kernels, dtype=np.float32)),
        strides=[1, sh, sw, 1],
        padding=padding.upper(),
    )


def sobel_edges(images):
    gx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    out = []
    for img in np.asarray(images, dtype=float)[..., 0]:
        gx_img = ndimage.correlate(img, gx, mode="constant")
        gy_img = ndimage.correlate(img, gx.T, mode="constant")
        out.append(np.stack([gx_img, gy_img], axis=-1))
    return np.array(out)
