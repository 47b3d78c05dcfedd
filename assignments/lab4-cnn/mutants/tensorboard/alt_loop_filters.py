# kind: alternative
# why: writer closed explicitly after logging; filters scaled one by one in a loop from get_weights()
def log_images(logdir, images, step=0, name="samples", max_outputs=9):
    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        tf.summary.image(name, tf.convert_to_tensor(images), step=step, max_outputs=max_outputs)
    writer.close()


def filters_to_images(model):
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            kernel = layer.get_weights()[0]
            break
    out = []
    for f in range(kernel.shape[-1]):
        img = kernel[:, :, 0, f]
        if img.max() > img.min():
            img = (img - img.min()) / (img.max() - img.min())
        else:
            img = np.zeros_like(img)
        out.append(img[:, :, None])
    return np.array(out)
