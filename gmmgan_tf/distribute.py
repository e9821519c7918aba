"""tf.distribute strategy from the config."""
from __future__ import annotations

import tempfile

import numpy as np
import tensorflow as tf

from gmmgan_tf.config import Config


def split_cpu(num_devices: int) -> None:
    """Splits the CPU into `num_devices` logical devices; must run before TF uses the CPU."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def make_strategy(config: Config) -> tf.distribute.Strategy:
    if config.num_virtual_devices:
        split_cpu(config.num_virtual_devices)
    if config.strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if config.strategy == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process keeps the run's files: always, except on the non-chief workers of
    a multi-worker run (the chief is task `chief`, or `worker` 0 when there is none)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    return is_chief_task(resolver)


def is_chief_task(resolver: tf.distribute.cluster_resolver.ClusterResolver) -> bool:
    """is_chief for the task `resolver` describes (TFConfigClusterResolver(): TF_CONFIG's)."""
    if resolver.task_type in (None, "chief"):
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def worker_workdir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """Where this process writes: `workdir` on the chief, a fresh scratch directory on the other
    workers. Every worker must take part in saving checkpoints (saving may run collectives),
    but only the chief's copy is kept (TF's multi-worker recipe); all workers resume from the
    chief's checkpoints, so the workdir must be on a file system they share."""
    if is_chief(strategy):
        return workdir
    return tempfile.mkdtemp(prefix="gmmgan-worker-")


def from_chief(strategy: tf.distribute.Strategy, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The chief's `arrays` on every worker of a multi-worker run (`strategy`: its
    MultiWorkerMirroredStrategy; the other workers pass arrays of the same shapes, zeros say).
    One all-reduce (sum) to which only global replica 0 (the chief's first: the strategy numbers
    the chief's replicas first) contributes, so it is also a barrier: no worker returns before
    the chief has computed its `arrays`. The values travel as float32."""
    flat = np.concatenate([np.ravel(a).astype(np.float32) for a in arrays])
    shares = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant(flat if context.replica_id_in_sync_group == 0
                                    else np.zeros_like(flat)))
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, shares, axis=None).numpy()
    ends = np.cumsum([np.size(a) for a in arrays])
    return [part.reshape(np.shape(a)) for part, a in zip(np.split(total, ends[:-1]), arrays)]
