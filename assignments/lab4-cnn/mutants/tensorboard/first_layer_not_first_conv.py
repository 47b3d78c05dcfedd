# kind: mistake
# why: takes model.layers[0], assuming the first layer is the Conv2D (a Rescaling or other layer may come first)
def log_images(logdir, images, step=0, name="samples", max_outputs=9):
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        tf.summary.image(name, images, step=step, max_outputs=max_outputs)
    writer.close()


def filters_to_images(model):
    conv = model.layers[0]
    k = conv.get_weights()[0][:, :, 0, :]
    k = np.transpose(k, (2, 0, 1))
    lo = k.min(axis=(1, 2), keepdims=True)
    hi = k.max(axis=(1, 2), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (k - lo) / span, 0.0)[..., None]
