# kind: alternative
# why: delegates to tf.nn.conv2d (explicit zero padding via tf.pad for int paddings), returns a tf tensor
def conv2d(x, w, stride=1, padding=0):
    if isinstance(stride, int):
        stride = (stride, stride)
    x = tf.convert_to_tensor(x, dtype=tf.float32)[None]
    w = tf.convert_to_tensor(w, dtype=tf.float32)
    if isinstance(padding, str):
        mode = padding.upper()
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        x = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        mode = "VALID"
    return tf.nn.conv2d(x, w, strides=[1, stride[0], stride[1], 1], padding=mode)[0]
