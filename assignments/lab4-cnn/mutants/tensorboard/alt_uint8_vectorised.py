# kind: alternative
# why: converts images to uint8 itself and flushes the writer; filters scaled with np.ptp over each filter, kernel found by class
def log_images(logdir, images, step=0, name="samples", max_outputs=9):
    data = np.clip(np.asarray(images) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default(step=step):
        tf.summary.image(name, data, max_outputs=max_outputs)
    writer.flush()


def filters_to_images(model):
    conv = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][0]
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    k = np.moveaxis(kernel[:, :, 0, :], -1, 0)
    span = np.ptp(k, axis=(1, 2), keepdims=True)
    k = (k - k.min(axis=(1, 2), keepdims=True)) / np.maximum(span, 1e-12)
    return k[..., np.newaxis].astype(np.float32)
