"""The lock on a directory a command writes into (gmmgan_tf/lock.py), without TensorFlow."""
import json
import os
import socket
import subprocess
import sys

import pytest

from gmmgan_tf import lock
from gmmgan_tf.errors import DirectoryInUse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_lock_left_by_a_killed_process_is_taken_over_with_one_line(tmp_path, capsys):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / lock.LOCK_FILE).write_text(json.dumps(
        {"pid": dead.pid, "host": "elsewhere", "mode": "train"}))
    with lock.hold(str(tmp_path), mode="evaluate"):
        assert json.loads((tmp_path / lock.LOCK_FILE).read_text()) == {
            "pid": os.getpid(), "host": socket.gethostname(), "mode": "evaluate"}
    assert capsys.readouterr().out == (
        f"warning: {tmp_path}/.lock: taking over the lock of PID {dead.pid} on host elsewhere, "
        "--mode=train, which ended without releasing it\n")
    assert not (tmp_path / lock.LOCK_FILE).exists()  # released


def test_held_by_another_process_then_free_again(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gmmgan_tf import lock\n"
         "with lock.hold(sys.argv[1], mode='export'):\n"
         "    print('held', flush=True); time.sleep(600)\n", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DirectoryInUse, match=rf"^--export_dir: '{tmp_path}' is in use by "
                                                 rf"PID {holder.pid} on host .*--mode=export"):
            with lock.hold(str(tmp_path), "--export_dir"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with lock.hold(str(tmp_path)):  # killed, the holder no longer blocks
        with lock.hold(str(tmp_path)):  # this process again (--compare naming --workdir)
            pass
