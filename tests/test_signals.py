"""A signal to the whole process group (as `timeout`, a scheduler or Ctrl-C in a shell send it) stops a
training run cleanly: DataLoader workers leave the signal to the trainer, which stops after its step, writes
its checkpoint and exits 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import REPO


def test_sigterm_to_the_process_group_stops_training_with_a_checkpoint(shapes, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "sn.h5"
    proc = subprocess.Popen([sys.executable, "-m", "gaia_cli", "train-supernet", "--data", str(shapes / "train.json"),
                             "--space", "tiny", "--epochs", "50", "--batch-size", "2", "--workers", "2",
                             "--log-every", "1", "--checkpoint-every", "100000", "--seed", "0", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stderr:  # the workers are running once a step is logged
            lines.append(line)
            if line.startswith("step 2 "):
                os.killpg(proc.pid, signal.SIGTERM)
                break
        lines += proc.stderr.readlines()
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = "".join(lines)
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert "internal error" not in text and "killed by signal" not in text, text
    assert out.with_name("sn.ckpt.h5").is_file(), text
    assert not out.exists()
