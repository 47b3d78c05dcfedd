# kind: mistake
# why: scales by the brightest pixel present instead of 255 (right only when the images contain a 255)
def prepare_images(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    return (images / images.max()).astype("float32")

def prepare_labels(labels):
    return np.asarray(labels).reshape(-1).astype("int64")

def compare_datasets(datasets, epochs=1, batch_size=64, build=None):
    build = build or small_cnn
    results = {}
    for name, ((x_train, y_train), (x_test, y_test)) in datasets.items():
        x_train, x_test = prepare_images(x_train), prepare_images(x_test)
        y_train, y_test = prepare_labels(y_train), prepare_labels(y_test)
        model = build(input_shape=x_train.shape[1:], num_classes=10)
        start = time.time()
        history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
        seconds = time.time() - start
        test_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
        results[name] = {
            "input_shape": tuple(int(d) for d in x_train.shape[1:]),
            "train_accuracy": float(history.history["accuracy"][-1]),
            "test_accuracy": float(test_accuracy),
            "seconds_per_epoch": seconds / epochs,
        }
    return results
