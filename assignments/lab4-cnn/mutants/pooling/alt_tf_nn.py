# kind: alternative
# why: delegates to tf.nn.max_pool2d / avg_pool2d with VALID padding on a batch of one, returns tensors
def max_pool2d(x, pool_size=2, stride=None):
    stride = pool_size if stride is None else stride
    x = tf.convert_to_tensor(x, dtype=tf.float32)[None]
    return tf.nn.max_pool2d(x, pool_size, stride, "VALID")[0]


def avg_pool2d(x, pool_size=2, stride=None):
    stride = stride or pool_size
    x = tf.convert_to_tensor(x, dtype=tf.float32)[None]
    return tf.nn.avg_pool2d(x, pool_size, stride, "VALID")[0]
