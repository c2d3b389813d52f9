"""In-memory arrays fed to ``fit``, ``evaluate`` and ``predict`` through our own tf.data
pipeline, with tf.data's autotuning off.

Given NumPy arrays, Keras builds an autotuned tf.data pipeline and makes a new iterator
for every epoch. Destroying the previous one waits for its autotuning thread, and on a
2-core CPU that wait sometimes lasted 10 s: profiles on an AMD EPYC showed the main
thread blocked in ``UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper`` at
the start of an epoch, twice in the 15 epochs of the default run, each time adding half
an epoch. Here no tuning thread exists: two parallel gathers and a short prefetch keep up
with any model this project trains. Each pass is finite, so an epoch is exactly one pass
over the data whatever ``trainer.steps_per_execution`` is (an endless stream would run
whole calls of that many batches past the end of the data).

Images that stay in an on-disk cache (a ``DiskArray``) take the same path, except that
each batch of indices is read from the file (``os.pread``, outside the GIL) instead of
gathered from memory: shuffling is by index, and memory holds only the batches in flight.

Under a tf.distribute strategy the arrays go to Keras as before, which distributes them
(a ``DiskArray`` is read into memory first).
"""

from __future__ import annotations

import weakref

import numpy as np

from experiments import cpus
from experiments.data.disk_array import DiskArray
from experiments.data.images import decode_or_reason

PARALLEL_GATHERS = 2
PREFETCH = 4  # batches


def inference_batch(training_batch: int) -> int:
    """The batch for a pass without gradients: at least 64 images, which keeps the CPU busy."""
    return max(training_batch, 64)


def usable() -> bool:
    """Whether ``fit`` may stream (not under a tf.distribute strategy)."""
    import tensorflow as tf

    return not tf.distribute.has_strategy()


def steps(samples: int, batch_size: int) -> int:
    """Batches in one pass over ``samples`` (the last one partial)."""
    return -(-samples // batch_size)


def training(x, y, batch_size: int, seed: int):
    """``(x, y)`` in batches, one pass per iterator, in a new order each pass (from ``seed``)."""
    import tensorflow as tf

    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return _gathered(order.batch(batch_size), x, y)


def evaluation(x, y, batch_size: int):
    """``(x, y)`` in order, in batches, one pass per iterator."""
    return _gathered(_in_order(len(x), batch_size), x, y)


def in_memory(x):
    """``x`` as an array in memory: a ``DiskArray`` read whole, anything else as it is."""
    return np.asarray(x) if isinstance(x, DiskArray) else x


def predict(model, x, batch_size: int):
    """The model's outputs over ``x`` in one ordered pass, as ``model.predict`` gives them.

    One graph for batches of any size. ``model.predict`` unrolls ``steps_per_execution``
    batches into each call (16 for the compact CNN) and traces that graph again for a pass
    with fewer batches left: on the default run, 1.3 s of tracing for the validation and
    test passes, more than the passes themselves.
    """
    if not usable() or len(x) == 0:
        return model.predict(in_memory(x), batch_size=batch_size, verbose=0)
    import tensorflow as tf

    batches = _gathered(_in_order(len(x), batch_size), x)
    spec = tf.TensorSpec((None, *batches.element_spec.shape[1:]), batches.element_spec.dtype)
    forward = _forward(model, spec)
    return np.concatenate([forward(batch).numpy() for batch in batches])


# model -> {input spec: its inference function}; an entry goes with its model.
_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward(model, spec):
    """``model(batch, training=False)`` as one TensorFlow function, traced once per model
    and input spec: the frozen features call ``predict`` once per chunk of images."""
    import tensorflow as tf

    functions = _FORWARD.setdefault(model, {})
    if spec not in functions:
        held = weakref.ref(model)  # not the model itself: the cache must not keep it alive
        functions[spec] = tf.function(
            lambda batch: held()(batch, training=False), input_signature=[spec]
        )
    return functions[spec]


def _in_order(samples: int, batch_size: int):
    """Batches of the indices ``0 .. samples - 1``, in order."""
    import tensorflow as tf

    return tf.data.Dataset.range(samples).batch(batch_size)


def _gathered(batches, x, y=None):
    """Each batch of indices as the rows of ``x`` (and ``y``) it names.

    Keras' own pipeline for arrays also logs an error line from TensorFlow
    (``NodeDef mentions attribute use_unbounded_threadpool``) that this one does not.
    """
    import tensorflow as tf

    with tf.device("/cpu:0"):  # the data stays in host memory, as with Keras' own pipeline
        images = _reader(x) if isinstance(x, DiskArray) else tf.constant(x)
        labels = None if y is None else tf.constant(y)

    def rows(index):
        batch = images(index) if callable(images) else tf.gather(images, index)
        if labels is None:
            return batch
        return batch, tf.gather(labels, index)

    stream = batches.map(
        rows,
        num_parallel_calls=PARALLEL_GATHERS,
        deterministic=True,
    ).prefetch(PREFETCH)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return stream.with_options(options)


def _reader(x: DiskArray):
    """A TensorFlow function reading the rows of ``x`` that a batch of indices names."""
    import tensorflow as tf

    row_shape, dtype = x.shape[1:], tf.as_dtype(x.dtype)

    def read(index):
        batch = tf.numpy_function(x.read, [index], dtype, stateful=False)
        batch.set_shape((None, *row_shape))
        return batch

    return read


def decoded_files(paths, size: int, channels: int, batch_size: int):
    """Batches of ``(pixels, reasons)`` for the image files ``paths``, in order.

    Files are decoded on every core while the previous batch is used; a file that cannot
    be decoded gives zero pixels and the reason (bytes), every other one an empty reason.
    """
    import tensorflow as tf

    def decode(path):
        pixels, reason = decode_or_reason(path.decode(), size, channels)
        if pixels is None:
            pixels = np.zeros((size, size, channels), np.uint8)
        return pixels, reason.encode()

    def read(path):
        pixels, reason = tf.numpy_function(decode, [path], (tf.uint8, tf.string), stateful=False)
        pixels.set_shape((size, size, channels))
        reason.set_shape(())
        return pixels, reason

    files = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    cores = cpus.usable()
    batches = files.map(read, num_parallel_calls=cores, deterministic=True)
    yield from batches.batch(batch_size).prefetch(2).as_numpy_iterator()
