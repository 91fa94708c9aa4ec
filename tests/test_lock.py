"""One writer per output folder: a second writer is refused by name, a dead writer's lock is taken over."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from manifests.lock import LOCK_NAME, FolderLock, LockError

from conftest import tiny_config_text


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    with FolderLock(tmp_path, "datagen build"):
        with pytest.raises(LockError, match=rf"is being written by pid {os.getpid()} on {socket.gethostname()} \(datagen build"):
            FolderLock(tmp_path, "datagen build").acquire()
    assert not (tmp_path / LOCK_NAME).exists()
    with FolderLock(tmp_path, "again"):  # released: free again
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_message(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "command": "datagen build",
                                                  "started_s": time.time() - 60}))
    said = []
    with FolderLock(tmp_path, "datagen build", announce=said.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and "taking over the stale lock" in said[0] and "no longer runs" in said[0]


def test_a_lock_held_on_another_host_is_not_broken(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "gpu-node-7", "command": "datagen build", "started_s": 0}))
    with pytest.raises(LockError, match=r"pid 1 on gpu-node-7 .*delete .*\.lock"):
        FolderLock(tmp_path, "datagen build").acquire()


@pytest.mark.slow
def test_two_builds_into_one_folder_the_second_exits_2_and_the_first_completes(tmp_path, corpus_dir):
    config_a = tmp_path / "a.toml"
    config_a.write_text(tiny_config_text(corpus_dir, examples="{ train = 24, valid = 8, test = 8 }"))
    config_b = tmp_path / "b.toml"
    config_b.write_text(tiny_config_text(corpus_dir).replace("seed = 7", "seed = 8"))
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "datagen.cli", "build", str(config_a), "--out", str(out), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / LOCK_NAME).exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "datagen.cli", "build", str(config_b), "--out", str(out), "--overwrite", "--no-progress"],
                            capture_output=True, text=True)
    assert second.returncode == 2, second.stderr
    assert f"is being written by pid {first.pid}" in second.stderr and "datagen build" in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    audit = subprocess.run([sys.executable, "-m", "datagen.cli", "audit", str(out)], capture_output=True, text=True)
    assert audit.returncode == 0 and "PASS" in audit.stderr
    assert not (out / LOCK_NAME).exists()
