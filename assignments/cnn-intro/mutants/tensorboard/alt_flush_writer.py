# kind: alternative
# why: TensorBoard callback with histograms; the image writer flushed and kept open, pathlib paths
def log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4):
    root = Path(logdir)
    model = small_cnn(input_shape=tuple(x.shape[1:]), num_classes=10)
    callback = keras.callbacks.TensorBoard(log_dir=str(root), histogram_freq=1)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size,
                        validation_split=validation_split, callbacks=[callback], verbose=0)
    writer = tf.summary.create_file_writer(str(root / "images"))
    with writer.as_default():
        tf.summary.image("samples", x[:n_images].astype(np.float32), step=0, max_outputs=len(x))
    writer.flush()
    return history.history
