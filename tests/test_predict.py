"""Prediction script: parsing, answers, sessions, and every kind of bad input or file."""

import argparse
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import predict_cls_rnn as P
from rnn_tutorial import runs
from conftest import QUICK, ROOT, default_ctrl_c, run_script


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text", ["3 7 1 9", "3,7,1,9", "[3, 7, 1, 9]", "  [3 ,7,  1 9] ", "3, 7, 1, 9"])
def test_the_article_formats_parse(text):
    assert P.parse_sequence(text, 9) == [3, 7, 1, 9]


@pytest.mark.parametrize("text, words", [
    ("10", ["10", "out of range", "0..9"]),
    ("3 -1", ["-1", "negative", "0..9"]),
    ("3 x", ["'x'", "not a whole number"]),
    ("3.5", ["'3.5'", "not a whole number"]),
    ("", ["empty"]),
    ("   ", ["empty"]),
    ("[]", ["empty"]),
    ("3,,4", ["empty item"]),
    ("1 " * 1001, ["too long", "1000"]),
    ("1" * 10001, ["line too long", "10000"]),
    ("٣", ["not a whole number"]),  # a non-ASCII digit int() would accept
    ("1" * 5000, ["out of range", "11111111111111111111...", "0..9"]),  # longer than int() accepts
])
def test_bad_sequences_are_named(text, words):
    with pytest.raises(P.InputError) as error:
        P.parse_sequence(text, 9)
    for word in words:
        assert word in str(error.value)


def test_leading_zeros_are_read_as_numbers():
    assert P.parse_sequence("0009 00", 9) == [9, 0]


def test_range_follows_the_trained_max_number():
    assert P.parse_sequence("4 4", 4) == [4, 4]
    with pytest.raises(P.InputError, match="0..4"):
        P.parse_sequence("5", 4)


# ---------------------------------------------------------------- answers


def test_answer_is_the_argmax_and_checks_the_truth(trained_dir):
    model, config, _ = P.load_trained_model(str(trained_dir))
    assert not model.training
    record = P.answer(model, config, [3, 7, 1, 9])
    with torch.no_grad():
        logits = model(torch.tensor([[3, 7, 1, 9]]), torch.tensor([4]))[0]
    assert record["prediction"] == int(logits.argmax())
    assert record["confidence"] == pytest.approx(float(logits.softmax(0).max()), abs=1e-4)
    assert record["answer"] == 0 and record["correct"] == (record["prediction"] == 0)
    assert "note" not in record
    assert "outside the trained 2-5" in P.answer(model, config, list(range(10)) + [1, 2])["note"]


# ---------------------------------------------------------------- command line


def predict(trained_dir, *args, stdin_text=None):
    return run_script("predict_cls_rnn.py", "--save_dir", str(trained_dir), *args, stdin_text=stdin_text)


def test_one_shot(trained_dir):
    out = predict(trained_dir, "3", "7", "1", "9")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[3, 7, 1, 9] -> ") and "true answer 0" in out.stdout
    bad = predict(trained_dir, "3", "12")
    assert bad.returncode == 1 and "12 is out of range" in bad.stderr and "Traceback" not in bad.stderr


def test_piped_lines_one_result_each_and_exit_status(trained_dir):
    good = predict(trained_dir, stdin_text="3 7 1 9\n[8, 8, 8]\n5,5\n")
    assert good.returncode == 0
    lines = good.stdout.splitlines()
    assert len(lines) == 3 and "true answer 4" in lines[1] and ">>>" not in good.stdout
    mixed = predict(trained_dir, stdin_text="3 7\n10\n\nabc\n-4\n1 2 3 4 5 6 7 8 9 0 1\n")
    assert mixed.returncode == 1
    lines = mixed.stdout.splitlines()
    assert len(lines) == 6
    assert [l.startswith("invalid input") for l in lines] == [False, True, True, True, True, False]
    assert "extrapolation" in lines[5] and "Traceback" not in mixed.stderr


def test_undecodable_bytes_are_an_invalid_line(trained_dir):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "predict_cls_rnn.py"), "--save_dir", str(trained_dir)],
                         input=b"3 4\n\xff\xfe\n", capture_output=True, timeout=120)
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 1 and len(lines) == 2 and "not a whole number" in lines[1]
    assert b"Traceback" not in out.stderr


def test_json_output(trained_dir):
    out = predict(trained_dir, "--json", stdin_text="[3, 7, 1, 9]\n11\n")
    first, second = [json.loads(line) for line in out.stdout.splitlines()]
    assert first["sequence"] == [3, 7, 1, 9] and first["answer"] == 0 and 0 < first["confidence"] <= 1
    assert second == {"input": "11", "error": second["error"]} and "out of range" in second["error"]
    assert out.returncode == 1


def test_quit_ends_a_piped_session(trained_dir):
    out = predict(trained_dir, stdin_text="3 4\nquit\n5 5\n")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 1


def run_on_terminal(trained_dir, keys):
    """Run the predictor on a pseudo-terminal, type keys, return (exit status, screen text)."""
    pid, fd = pty.fork()
    if pid == 0:
        default_ctrl_c()
        os.execv(sys.executable, [sys.executable, os.path.join(ROOT, "predict_cls_rnn.py"),
                                  "--save_dir", str(trained_dir)])
    screen, deadline = b"", time.monotonic() + 120
    pending = list(keys)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        if pending and screen.count(b">>> ") > len(keys) - len(pending):
            # A beat after the prompt, as a person types: CPython's readline can leave a SIGINT that
            # lands in the instant it sets up its prompt pending until the next key (cpython#112585).
            time.sleep(0.3)
            os.write(fd, pending.pop(0))
    for _ in range(300):  # up to 30 s more for it to exit
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.1)
    else:  # it never got through its prompts: stop it rather than wait forever
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


@pytest.mark.parametrize("ending", [b"quit\n", b"exit\n", b"\x04", b"\x03"], ids=["quit", "exit", "ctrl-d", "ctrl-c"])
def test_interactive_session_ends_cleanly(trained_dir, ending):
    code, screen = run_on_terminal(trained_dir, [b"3 7 1 9\n", b"42\n", ending])
    assert code == 0, screen
    assert "Loaded" in screen and "true answer 0" in screen and "42 is out of range" in screen
    assert "Traceback" not in screen


# ---------------------------------------------------------------- bad folders and files


def copy_run(trained_dir, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(trained_dir, target)
    return target


def assert_clean_failure(out, *words):
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    for word in words:
        assert word in out.stderr


def test_missing_folder_and_missing_checkpoint(tmp_path):
    assert_clean_failure(run_script("predict_cls_rnn.py", "--save_dir", str(tmp_path / "nope"), "1 2"),
                         "does not exist")
    assert_clean_failure(run_script("predict_cls_rnn.py", "--save_dir", str(tmp_path), "1 2"), "no model_step_N.pt")
    assert_clean_failure(run_script("predict_cls_rnn.py", "--checkpoint", str(tmp_path / "x.pt"), "1"), "not found")


def test_corrupt_and_truncated_checkpoints(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path)
    newest = run / "model_step_300.pt"
    newest.write_bytes(newest.read_bytes()[:200])
    assert_clean_failure(predict(run, "1 2"), "model_step_300.pt", "corrupt or truncated")
    (run / "args.pt").write_bytes(b"not a torch file at all")
    assert_clean_failure(predict(run, "--checkpoint", str(run / "model_step_100.pt"), "1 2"), "args.pt")


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("shape", ["dict", "namespace"])
def test_tampered_config_is_refused_without_running_code(trained_dir, tmp_path, shape):
    run = copy_run(trained_dir, tmp_path)
    marker = tmp_path / "pwned"
    config = dict(runs.read_config(str(run / "args.pt")), payload=Exploit(str(marker)))
    torch.save(config if shape == "dict" else argparse.Namespace(**config), run / "args.pt")
    assert_clean_failure(predict(run, "1 2"), "refusing to load")
    assert not marker.exists()


def test_a_config_asking_for_an_impossible_model_is_refused(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path)
    config = runs.read_config(str(run / "args.pt"))
    torch.save(argparse.Namespace(**dict(config, hidden_dim=10**9)), run / "args.pt")
    assert_clean_failure(predict(run, "1 2"), "impossible model", "memory")
    torch.save(argparse.Namespace(**dict(config, num_layers="3")), run / "args.pt")
    assert_clean_failure(predict(run, "1 2"), "impossible model", "num_layers")


def test_weights_that_do_not_fit_the_config(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path)
    config = runs.read_config(str(run / "args.pt"))
    config["hidden_dim"] = 32
    torch.save(config, run / "args.pt")  # a plain dict, as earlier versions of this project wrote
    assert_clean_failure(predict(run, "1 2"), "does not fit")


def test_folders_of_earlier_versions_still_load(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path)
    torch.save(runs.read_config(str(run / "args.pt")), run / "args.pt")  # args.pt as a plain dict
    (run / "result.json").unlink()
    out = predict(run, "1 2")
    assert out.returncode == 0 and "true answer 3" in out.stdout


def test_retraining_another_config_into_the_same_folder(trained_dir, tmp_path):
    run = copy_run(trained_dir, tmp_path)
    out = run_script("train_cls_rnn.py", *QUICK, "--total_steps", "150", "--max_number", "4",
                     "--hidden_dim", "8", "--save_every", "0", "--save_dir", str(run), "--swanlab_mode",
                     "disabled", "--overwrite")
    assert out.returncode == 0, out.stderr
    answer = predict(run, "4 4 3")
    assert answer.returncode == 0, answer.stderr
    assert "true answer 1" in answer.stdout  # 11 mod 5
    assert "model_step_150.pt" in answer.stderr and "digits 0-4" in answer.stderr
    bad = predict(run, "4 9")
    assert bad.returncode == 1 and "0..4" in bad.stderr


# ---------------------------------------------------------------- what the audit found


def test_the_predictor_says_what_the_audit_found_and_ignores_a_stale_verdict(trained_dir, tmp_path):
    """audit.json in the run folder (rnn_tutorial/verdicts.py, written by the audit): its verdict is said after the
    load line; one for other weights is ignored with a one-line note; a folder without one behaves as before."""
    from rnn_tutorial import verdicts
    folder = tmp_path / "run"
    shutil.copytree(trained_dir, folder)
    model, _, checkpoint = P.load_trained_model(str(folder))
    state = model.state_dict()

    def said(*sequence):
        out = predict(folder, *sequence)
        assert out.returncode == 0, out.stderr
        return out.stderr.splitlines()[1:], out.stdout

    assert said("3", "7")[0] == []  # no audit: as before
    not_proven = {"verdict": "no counterexample (10 sequences searched); not proven: ...", "proof": {"proven": False}}
    verdicts.write(str(folder), checkpoint, state, not_proven)
    assert said("3", "7")[0] == ["audit: no counterexample found, not proven"]
    wrong = {"verdict": "counterexample 4 0x11 -> 3 (truth 4)", "proof": {"proven": False}}
    verdicts.write(str(folder), checkpoint, state, wrong, counterexample_text="4 0x11")
    assert said("3", "7")[0] == ["audit: wrong on `4 0x11` (audit)"]
    proven = {"verdict": "no counterexample (10 sequences searched); proven for every length", "proof": {"proven": True}}
    verdicts.write(str(folder), checkpoint, state, proven, certificate={"path": "c", "checked": True, "message": "valid"})
    lines, answer = said(*["1"] * 12)  # longer than trained: within the proof, not extrapolation
    assert lines == ["audit: proven for every length (certificate checked)"]
    assert "extrapolation" not in answer and "within the audit's proof for every length" in answer
    other = {name: value.clone() for name, value in state.items()}
    other["fc.bias"][0] += 1.0
    verdicts.write(str(folder), checkpoint, other, proven)
    lines, answer = said(*["1"] * 12)
    assert lines == [f"note: {os.path.abspath(folder / 'audit.json')} judged other weights than this checkpoint's; "
                     "ignored"] and "extrapolation" in answer
