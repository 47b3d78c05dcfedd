# kind: mistake
# why: trains without validation_split: nothing logged for validation
def log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4):
    logdir = str(logdir)
    model = small_cnn(input_shape=x.shape[1:], num_classes=10)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[keras.callbacks.TensorBoard(log_dir=logdir)])
    writer = tf.summary.create_file_writer(os.path.join(logdir, "images"))
    with writer.as_default():
        tf.summary.image("samples", np.asarray(x[:n_images], dtype="float32"), step=0, max_outputs=n_images)
    writer.close()
    return history.history
