"""tf.distribute strategy from the config."""
from __future__ import annotations

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
