# kind: alternative
# why: np.expand_dims and np.squeeze, with the test accuracy from model.evaluate's dict
def prepare_images(images):
    x = np.array(images, dtype=np.float32)
    if x.ndim == 3:
        x = np.expand_dims(x, axis=-1)
    x /= 255.0
    return x


def prepare_labels(labels):
    y = np.array(labels)
    return np.squeeze(y, axis=1).astype(np.int32) if y.ndim == 2 else y.astype(np.int32)


def compare_datasets(datasets, epochs=1, batch_size=64, build=None):
    results = {}
    for name in datasets:
        (xa, ya), (xb, yb) = datasets[name]
        xa, ya = prepare_images(xa), prepare_labels(ya)
        xb, yb = prepare_images(xb), prepare_labels(yb)
        make = small_cnn if build is None else build
        net = make(input_shape=xa.shape[1:], num_classes=10)
        t0 = time.perf_counter()
        hist = net.fit(xa, ya, batch_size=batch_size, epochs=epochs, verbose=0)
        elapsed = time.perf_counter() - t0
        scores = net.evaluate(xb, yb, verbose=0, return_dict=True)
        results[name] = dict(input_shape=xa.shape[1:], train_accuracy=hist.history["accuracy"][-1],
                             test_accuracy=scores["accuracy"], seconds_per_epoch=elapsed / epochs)
    return results
