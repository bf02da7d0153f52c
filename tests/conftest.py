import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_script(script, *args, stdin_text=None, cwd=None, timeout=120):
    """Run one of the project's scripts as a user would: fresh process, no terminal, no network."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *args],
        input=stdin_text if stdin_text is not None else "",
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )


def run_module(module, *args, timeout=120):
    """python -m module from the repository root, as a user would run the audit."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *args], input="", capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


QUICK = ["--total_steps", "300", "--warmup_step", "10", "--log_every", "50", "--eval_every", "100",
         "--eval_samples", "200"]


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """A model trained for a few hundred steps (SwanLab off), shared by the predictor tests."""
    save_dir = tmp_path_factory.mktemp("trained") / "output"
    out = run_script("train_cls_rnn.py", *QUICK, "--save_every", "100", "--save_dir", str(save_dir),
                     "--swanlab_mode", "disabled")
    assert out.returncode == 0, out.stderr
    return save_dir


def default_ctrl_c():
    """preexec_fn: give a child the default Ctrl-C (a shell running tests in the background may have set it ignored)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
