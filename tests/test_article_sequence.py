"""Following the article command by command, its own files in both directions, and oversized flags."""

import os
import subprocess
import sys
import time

import pytest
import torch

import predict_cls_rnn as P
import train_cls_rnn as T
from conftest import ROOT, run_script

from rnn_tutorial import article

needs_article = pytest.mark.skipif(not os.path.isfile(article.DEFAULT_ARTICLE),
                                   reason="the article (../shared/seeds/article_zh.md) is not beside this checkout")

# The article's five training commands, as printed (its text also shows `python predict_cls_rnn.py`).
ARTICLE_COMMANDS = [
    "",
    "--batch_size 64 --lr 0.005 --run_name large_batch_lr5e-3",
    "--hidden_dim 32 --num_layers 3  --run_name deeper_rnn",
    "--hidden_dim 32 --num_layers 3  --batch_size 64 --lr 0.005  --run_name sota",
    "--hidden_dim 32 --num_layers 3  --batch_size 64 --lr 0.005 --warmup_step 2000  --run_name sota_warmup",
]
SHORT = ["--eval_samples", "200", "--eval_every", "100", "--log_every", "100", "--swanlab_mode", "disabled"]


def shortened(command):
    """The command with a run short enough for a test (just past the warmup of sota_warmup)."""
    steps = "2010" if "--warmup_step 2000" in command else "200"
    return command.split() + ["--total_steps", steps, "--save_every", "100"] + SHORT


def test_the_articles_commands_one_after_another_all_train_and_keep_their_files(tmp_path):
    for command in ARTICLE_COMMANDS:
        out = run_script("train_cls_rnn.py", *shortened(command), cwd=tmp_path, timeout=180)
        assert out.returncode == 0, f"{command}: {out.stderr}"
        time.sleep(0.05)  # distinct finishing times, even on coarse file clocks
    runs = sorted(os.listdir(tmp_path / "output"))
    assert runs == ["baseline", "deeper_rnn", "large_batch_lr5e-3", "sota", "sota_warmup"]
    for name in runs:
        files = set(os.listdir(tmp_path / "output" / name))
        assert {"args.pt", "args.json", "result.json", "model_step_100.pt", "model_step_200.pt"} <= files

    again = run_script("train_cls_rnn.py", *shortened(ARTICLE_COMMANDS[1]), cwd=tmp_path)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "--run_name" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    answer = run_script("predict_cls_rnn.py", "3", "7", "1", "9", cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert "Loaded run 'sota_warmup'" in answer.stderr and "output/sota_warmup/model_step_2010.pt" in answer.stderr
    assert "true answer 0" in answer.stdout

    listing = run_script("predict_cls_rnn.py", "--list", cwd=tmp_path)
    lines = listing.stdout.splitlines()
    assert listing.returncode == 0 and lines[1].startswith("* ./output/sota_warmup") and " 2010 " in lines[1]
    assert [line.split()[0] for line in lines[2:6]] == [f"./output/{n}" for n in
                                                         ("sota", "deeper_rnn", "large_batch_lr5e-3", "baseline")]
    assert all("%" in line and "20" in line for line in lines[1:6])  # accuracy and date


def run_article_training(folder, flags):
    """The article's train_cls_rnn.py as printed, in a fresh process, SwanLab replaced by a no-op."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import article, random, torch; "
            "random.seed(1); torch.manual_seed(1); "
            "article.exec_training(sys.argv[3:] + ['--save_dir', sys.argv[2]], article.training_code())")
    out = subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, "rnn_tutorial"), str(folder), *flags],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr


@needs_article
def test_a_folder_written_by_the_articles_script_loads_in_our_predictor(tmp_path):
    folder = tmp_path / "article_output"
    run_article_training(folder, ["--total_steps", "200", "--hidden_dim", "8", "--num_layers", "2"])
    assert sorted(os.listdir(folder)) == ["args.pt", "model_step_200.pt"]
    model, config, checkpoint = P.load_trained_model(str(folder))
    assert checkpoint.endswith("model_step_200.pt") and config["hidden_dim"] == 8 and config["num_layers"] == 2

    direct = T.RnnClsNet(vocab_size=10, embed_dim=10, hidden_dim=8, num_layers=2, cls_num=10)
    direct.load_state_dict(torch.load(folder / "model_step_200.pt", weights_only=True))
    inputs, lengths, _ = T.make_eval_set(64, 1, 9, 9, seed=5)
    with torch.no_grad():
        assert torch.equal(model(inputs, lengths, lengths_sorted=True), direct.eval()(inputs, lengths, True))

    out = run_script("predict_cls_rnn.py", "--save_dir", str(folder), "3", "7", "1", "9")
    assert out.returncode == 0 and "true answer 0" in out.stdout and "baseline-lr1e2" in out.stderr


@needs_article
def test_the_articles_predictor_reads_a_folder_we_wrote(tmp_path):
    out = run_script("train_cls_rnn.py", "--total_steps", "200", "--save_dir", "./output", *SHORT, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (tmp_path / "article_predict.py").write_text(article.predictor_code(), encoding="utf-8")
    answer = subprocess.run([sys.executable, "article_predict.py"], input="3 7 1 9\n[bad]\nquit\n", cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert "./output/model_step_200.pt" in answer.stdout  # it found our newest checkpoint
    ours = run_script("predict_cls_rnn.py", "--save_dir", "./output", "--json", "3", "7", "1", "9", cwd=tmp_path)
    prediction = __import__("json").loads(ours.stdout)["prediction"]
    assert f"模型预测结果: {prediction}" in answer.stdout  # the same answer from the same files


OVERSIZED = [("--max_seq_len", "50000"), ("--eval_samples", "2000000000"), ("--hidden_dim", "160000"),
             ("--embed_dim", "1000000000"), ("--num_layers", "10000000"), ("--max_number", "900000000"),
             ("--batch_size", "1600000000"), ("--threads", "100000")]


def test_an_oversized_flag_in_a_real_process_exits_2_with_one_line(tmp_path):
    flag, value = OVERSIZED[0]
    out = run_script("train_cls_rnn.py", flag, value, "--swanlab_mode", "disabled", cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "error:" in lines[0]
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize("flag, value", OVERSIZED)
def test_an_oversized_flag_gets_one_line_naming_it(tmp_path, monkeypatch, capsys, flag, value):
    """The same path as the process above (main, argparse's error), in this process: each flag's line."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        T.main([flag, value, "--swanlab_mode", "disabled"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and "error:" in lines[0] and flag in lines[0]
    assert not (tmp_path / "output").exists()


def test_help_states_the_size_limits_of_this_machine():
    out = run_script("train_cls_rnn.py", "--help")
    assert out.returncode == 0 and "Size limits on this machine" in out.stdout and "GiB" in out.stdout
