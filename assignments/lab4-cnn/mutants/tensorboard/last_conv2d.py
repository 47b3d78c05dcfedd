# kind: mistake
# why: takes the last Conv2D of the model (the one nearest the output) instead of the first
def log_images(logdir, images, step=0, name="samples", max_outputs=9):
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        tf.summary.image(name, images, step=step, max_outputs=max_outputs)
    writer.close()


def filters_to_images(model):
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
    k = conv.get_weights()[0][:, :, 0, :]
    k = np.transpose(k, (2, 0, 1))
    lo = k.min(axis=(1, 2), keepdims=True)
    hi = k.max(axis=(1, 2), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (k - lo) / span, 0.0)[..., None]
