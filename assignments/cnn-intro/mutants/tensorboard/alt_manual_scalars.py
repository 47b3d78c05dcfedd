# kind: alternative
# why: scalars written by its own callback with tf.summary.scalar into train/ and validation/ writers
class EpochLogger(keras.callbacks.Callback):
    def __init__(self, logdir):
        super().__init__()
        self.writers = {
            "train": tf.summary.create_file_writer(os.path.join(logdir, "train")),
            "validation": tf.summary.create_file_writer(os.path.join(logdir, "validation")),
        }

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for run, prefix in (("train", ""), ("validation", "val_")):
            with self.writers[run].as_default():
                for name in ("loss", "accuracy"):
                    tf.summary.scalar("epoch_" + name, logs[prefix + name], step=epoch)
            self.writers[run].flush()


def log_training(logdir, x, y, epochs=2, batch_size=32, validation_split=0.2, n_images=4):
    logdir = str(logdir)
    model = small_cnn(x.shape[1:], 10)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs,
                        validation_split=validation_split, verbose=0,
                        callbacks=[EpochLogger(logdir)])
    with tf.summary.create_file_writer(logdir + "/images").as_default():
        tf.summary.image("samples", tf.constant(x[:n_images], tf.float32), step=0,
                         max_outputs=n_images)
        tf.summary.flush()
    return dict(history.history)
