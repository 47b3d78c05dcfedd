# kind: alternative
# why: splits by hand as validation_split does (the last fraction held out) and passes validation_data
def log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4):
    logdir = str(logdir)
    model = small_cnn(input_shape=x.shape[1:], num_classes=10)
    split_at = int(np.floor(len(x) * (1.0 - validation_split)))
    history = model.fit(x[:split_at], y[:split_at], epochs=epochs, batch_size=batch_size,
                        verbose=0, validation_data=(x[split_at:], y[split_at:]),
                        callbacks=[keras.callbacks.TensorBoard(log_dir=logdir)])
    writer = tf.summary.create_file_writer(os.path.join(logdir, "images"))
    with writer.as_default():
        tf.summary.image("samples", np.asarray(x[:n_images], dtype="float32"), step=0, max_outputs=n_images)
    writer.close()
    return history.history
