"""The real SwanLab dashboard serves a local run: loss, accuracy and learning rate."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import QUICK, run_script

# the swanlab installed beside this Python first (a stale shim on PATH may point elsewhere)
BESIDE = os.path.join(os.path.dirname(sys.executable), "swanlab")
SWANLAB = BESIDE if os.path.exists(BESIDE) else shutil.which("swanlab")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]


def test_swanlab_watch_serves_the_run(tmp_path):
    out = run_script("train_cls_rnn.py", *QUICK, "--save_dir", "out", "--swanlab_dir", "logs",
                     "--run_name", "dashboard_test", cwd=tmp_path)
    assert out.returncode == 0, out.stderr

    port = free_port()
    watch = subprocess.Popen([SWANLAB, "watch", "logs", "--host", "127.0.0.1", "--port", str(port)],
                             cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                project = get(f"{base}/project")
                break
            except OSError:
                if time.monotonic() > deadline or watch.poll() is not None:
                    pytest.fail(f"swanlab watch did not come up: {watch.stdout.read1().decode()[-500:]}")
                time.sleep(0.5)
        (experiment,) = [e for e in project["experiments"] if e["name"] == "dashboard_test"]
        assert experiment["config"]["seed"]["value"] == 42
        series = {tag: get(f"{base}/experiment/{experiment['id']}/tag/{tag}")["list"]
                  for tag in ("loss", "accuracy", "current_lr")}
        assert [p["index"] for p in series["loss"]] == list(range(50, 301, 50))
        assert [p["index"] for p in series["accuracy"]] == [100, 200, 300]
        assert all(0 <= p["data"] <= 1 for p in series["accuracy"])
        assert series["current_lr"][0]["data"] > series["current_lr"][-1]["data"]  # cosine decay
    finally:
        watch.terminate()
        watch.wait(timeout=20)
