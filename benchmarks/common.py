"""What every benchmark prints with its table: the machine, its load, the library versions."""
from __future__ import annotations

import os
import platform


def machine_line() -> str:
    """One Markdown line naming the machine. The load average matters on shared cores: other
    jobs slow every timed run, so compare ratios from one run, not absolute times across runs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"Machine: {_cpu_model()}, {os.cpu_count()} CPU "
            f"cores, {f'{len(gpus)} GPU' if gpus else 'no GPU'}; TensorFlow {tf.__version__}; "
            f"load average (1, 5, 15 min) {load}.")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return names[0] if names else platform.machine()
    except OSError:
        return platform.machine()
