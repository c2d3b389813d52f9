"""Keras 3 under ``tf.distribute.MultiWorkerMirroredStrategy``: two fixes that make fit work.

Keras 3.15's TensorFlow trainer fails there (keras-team/keras#20585, open), in two places:

- before the first step it averages the first batch over the workers to build the model
  (``strategy.reduce`` of a tuple: "Attempt to convert a value (PerReplica...)");
- after every step it averages each scalar metric with ``axis=0`` ("Invalid reduction
  dimension 0 for input with 0 dimensions").

Here the build uses this worker's part of the first batch (only its shapes matter), and
the metrics are averaged over the workers without an axis. Gradients were never the
problem: the strategy all-reduces them. Nothing changes for other strategies.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    """Patch Keras' TensorFlow trainer (once per process)."""
    global _applied
    if _applied:
        return
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer

    multi_worker = trainer._collective_all_reduce_multi_worker
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica

    def local(strategy, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and strategy is not None and multi_worker(strategy):
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda v: local(strategy, v), next(batches))
                break
            iterator = None
        return original_build(self, iterator=iterator, data_batch=data_batch)

    def reduce(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not multi_worker(strategy):
            return original_reduce(values, strategy, reduction)

        def mean(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.reduce("MEAN", value, axis=None)
            return value

        return tree.map_structure(mean, values)

    trainer.TensorFlowTrainer._maybe_symbolic_build = build
    trainer.reduce_per_replica = reduce
    _applied = True
