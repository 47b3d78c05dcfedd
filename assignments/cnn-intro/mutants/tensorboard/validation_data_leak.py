# kind: mistake
# why: validates on the last part of x with validation_data but trains on all of x, the held-out images included
def log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4):
    logdir = str(logdir)
    model = small_cnn(input_shape=x.shape[1:], num_classes=10)
    held_out = int(len(x) * validation_split)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0,
                        validation_data=(x[-held_out:], y[-held_out:]),
                        callbacks=[keras.callbacks.TensorBoard(log_dir=logdir)])
    writer = tf.summary.create_file_writer(os.path.join(logdir, "images"))
    with writer.as_default():
        tf.summary.image("samples", np.asarray(x[:n_images], dtype="float32"), step=0, max_outputs=n_images)
    writer.close()
    return history.history
