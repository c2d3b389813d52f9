"""In-memory arrays fed to ``fit`` as endless tf.data streams, one iterator for the whole fit.

Given NumPy arrays, Keras builds a tf.data pipeline and makes a new iterator for every
epoch. Destroying the previous one waits for its worker threads, and on a 2-core CPU that
wait sometimes lasted 10 s (seen in profiles on an AMD EPYC: the main thread blocked in
``UnboundedThreadPool::LogicalThreadWrapper::~LogicalThreadWrapper`` at the start of an
epoch, twice in 15 epochs of the default run, each time adding half an epoch). Here the
batches come from one endless stream per fit, reshuffled every epoch with the run's
seed, so the iterator lives as long as the fit and the next epoch's first batches are
already prefetched when the last one ends. tf.data's autotuning is off: two parallel
gathers and a short prefetch keep up with any model this runs, with no tuning thread.

Under a tf.distribute strategy the arrays go to Keras as before, which distributes them.
"""

from __future__ import annotations

PARALLEL_GATHERS = 2
PREFETCH = 4  # batches


def usable() -> bool:
    """Whether ``fit`` may stream (not under a tf.distribute strategy)."""
    import tensorflow as tf

    return not tf.distribute.has_strategy()


def steps(samples: int, batch_size: int) -> int:
    """Batches in one pass over ``samples`` (the last one partial)."""
    return -(-samples // batch_size)


def training(x, y, batch_size: int, seed: int):
    """``(x, y)`` in batches, reshuffled every epoch, endlessly (``steps`` batches an epoch)."""
    import tensorflow as tf

    order = tf.data.Dataset.range(len(x)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return _gathered(order.batch(batch_size).repeat(), x, y)


def evaluation(x, y, batch_size: int):
    """``(x, y)`` in order, in batches, endlessly: each ``steps`` batches are one whole pass."""
    import tensorflow as tf

    return _gathered(tf.data.Dataset.range(len(x)).batch(batch_size).repeat(), x, y)


def evaluate(model, x, y, batch_size: int) -> dict[str, float]:
    """``model.evaluate`` over ``(x, y)`` in one ordered pass; the metrics by name."""
    import tensorflow as tf

    if not usable():
        return model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    once = _gathered(tf.data.Dataset.range(len(x)).batch(batch_size), x, y)
    return model.evaluate(once, verbose=0, return_dict=True)


def predict(model, x, batch_size: int, verbose: int = 0):
    """``model.predict`` over ``x`` in one ordered pass."""
    import tensorflow as tf

    if not usable():
        return model.predict(x, batch_size=batch_size, verbose=verbose)
    once = _gathered(tf.data.Dataset.range(len(x)).batch(batch_size), x)
    return model.predict(once, verbose=verbose)


def _gathered(batches, x, y=None):
    """Each batch of indices as the rows of ``x`` (and ``y``) it names.

    Keras' own pipeline for arrays also logs an error line from TensorFlow
    (``NodeDef mentions attribute use_unbounded_threadpool``) that this one does not.
    """
    import tensorflow as tf

    images = tf.constant(x)
    labels = None if y is None else tf.constant(y)

    def rows(index):
        if labels is None:
            return tf.gather(images, index)
        return tf.gather(images, index), tf.gather(labels, index)

    stream = batches.map(
        rows,
        num_parallel_calls=PARALLEL_GATHERS,
        deterministic=True,
    ).prefetch(PREFETCH)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return stream.with_options(options)
