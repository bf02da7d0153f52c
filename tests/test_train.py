"""Training script: data, packing, schedule, checkpoints, flags, determinism, learning."""

import argparse
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
from collections import Counter

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pad_packed_sequence

import predict_cls_rnn as P
import train_cls_rnn as T
from rnn_tutorial import hardening as H, limits, runs, variants
from rnn_tutorial.audit import searches
from conftest import QUICK, ROOT, default_ctrl_c, run_script


def quick_args(tmp_path, *extra):
    return T.parse_args(QUICK + ["--swanlab_mode", "disabled", "--save_dir", str(tmp_path / "out"), *extra])


# ---------------------------------------------------------------- data


@pytest.mark.parametrize("max_number", [9, 4])
def test_dataset_samples_follow_the_task(max_number):
    data = T.SeqSumModDataset(total_samples=2000, min_seq_len=2, max_seq_len=5, max_number=max_number, seed=0)
    samples = list(data)
    assert len(samples) == 2000
    for digits, length, target in samples:
        assert 2 <= length <= 5 and len(digits) == length
        assert all(0 <= d <= max_number for d in digits)
        assert target == sum(digits) % (max_number + 1)
    assert {length for _, length, _ in samples} == {2, 3, 4, 5}
    assert {d for digits, _, _ in samples for d in digits} == set(range(max_number + 1))


def test_dataset_count_limit_and_reiteration():
    seeded = T.SeqSumModDataset(total_samples=7, seed=3)
    first, second = list(seeded), list(seeded)
    assert len(first) == len(second) == 7 and first == second  # a seeded dataset is a fixed set
    unseeded = T.SeqSumModDataset(total_samples=5)
    assert len(list(unseeded)) == 5 and len(list(unseeded)) == 5  # the count starts again
    endless = T.SeqSumModDataset(total_samples=None)
    assert len(list(itertools.islice(endless, 3000))) == 3000


def chi2_upper(df, z=3.29):
    """Wilson-Hilferty approximation of the chi-square quantile at about p = 0.9995."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2_uniform(counts, cells):
    n = sum(counts.values())
    return sum((counts.get(c, 0) - n / len(cells)) ** 2 / (n / len(cells)) for c in cells)


def test_random_batches_rows_are_valid_samples():
    inputs, lengths, targets = T.random_batches(50, 16, 2, 5, 6, torch.Generator().manual_seed(1))
    assert inputs.shape == (50, 16, 5) and lengths.shape == targets.shape == (50, 16)
    for x, lens, y in zip(inputs.view(-1, 5), lengths.view(-1), targets.view(-1)):
        n = int(lens)
        assert 2 <= n <= 5
        assert (x[:n] <= 6).all() and (x[:n] >= 0).all() and (x[n:] == 7).all()
        assert int(y) == int(x[:n].sum()) % 7
    assert (lengths[:, :-1] >= lengths[:, 1:]).all()  # sorted within each batch


def test_digit_skew_zero_draws_the_articles_stream_bit_for_bit():
    inputs, lengths, _ = T.random_batches(3, 16, 2, 5, 9, torch.Generator().manual_seed(5), digit_skew=0.0)
    g = torch.Generator().manual_seed(5)  # the article's law, drawn by hand: lengths, then digits, nothing else
    by_hand = torch.randint(2, 6, (3, 16), generator=g).sort(dim=1, descending=True).values
    digits = torch.randint(0, 10, (3, 16, 5), generator=g)
    assert torch.equal(lengths, by_hand)
    assert torch.equal(inputs, digits.masked_fill(torch.arange(5) >= by_hand[..., None], 10))


def test_digit_skew_makes_runs_common_and_keeps_the_task():
    inputs, lengths, targets = T.random_batches(200, 16, 10, 10, 9, torch.Generator().manual_seed(2), digit_skew=1.0)
    rows, y = inputs.view(-1, 10), targets.view(-1)
    assert torch.equal(y, rows.sum(dim=1) % 10)  # still the sum mod 10 of the digits drawn
    all_equal = (rows == rows[:, :1]).all(dim=1).float().mean().item()
    assert 0.04 < all_equal < 0.2  # about E[p^10] = 1/11 when every digit is the favourite; 1e-9 if uniform
    mostly_zero = ((rows == 0).sum(dim=1) >= 8).float().mean().item()
    assert 0.02 < mostly_zero < 0.06  # the favourite is 0 one time in ten, and then p >= 0.8 or so
    firsts = Counter(rows[:, 0].tolist())  # one digit per sequence: independent draws
    assert chi2_uniform(firsts, range(10)) < chi2_upper(9)  # every digit is the favourite as often
    _, _, uniform = T.random_batches(200, 16, 10, 10, 9, torch.Generator().manual_seed(2))
    assert not torch.equal(uniform, targets)


def test_fast_batches_draw_the_same_distribution_as_the_dataset():
    """Length, digits and target: both paths fit the task's law, and each other."""
    n = 40000
    inputs, lengths, targets = T.random_batches(n // 16, 16, 2, 5, 9, torch.Generator().manual_seed(0))
    fast = [(x[:int(l)].tolist(), int(l), int(y)) for x, l, y in
            zip(inputs.view(-1, 5), lengths.view(-1), targets.view(-1))]
    slow = list(T.SeqSumModDataset(n, 2, 5, 9, seed=0))
    joint_cells = [(length, t) for length in range(2, 6) for t in range(10)]
    position_cells = [(i, d) for i in range(5) for d in range(10)]
    for samples in (fast, slow):
        # sum of uniform digits mod 10 is uniform and independent of the length
        joint = Counter((length, t) for _, length, t in samples)
        assert chi2_uniform(joint, joint_cells) < chi2_upper(len(joint_cells) - 1)
        # every position holds uniform digits, whatever the length (pooled over lengths >= i + 1)
        for length in range(2, 6):
            positions = Counter((i, d) for digits, l, _ in samples if l == length for i, d in enumerate(digits))
            cells = [c for c in position_cells if c[0] < length]
            assert chi2_uniform(positions, cells) < chi2_upper(len(cells) - 1)
    # two-sample homogeneity of the (length, target) table
    a = Counter((l, t) for _, l, t in fast)
    b = Counter((l, t) for _, l, t in slow)
    stat = sum((a[c] - b[c]) ** 2 / (a[c] + b[c]) for c in joint_cells)
    assert stat < chi2_upper(len(joint_cells) - 1)


def test_pad_batch_pads_with_the_extra_token_and_sorts():
    inputs, lengths, targets = T.pad_batch([([1, 2], 2, 3), ([4, 5, 6], 3, 5)], pad_token=10)
    assert lengths.tolist() == [3, 2]
    assert inputs.tolist() == [[4, 5, 6], [1, 2, 10]]
    assert targets.tolist() == [5, 3]


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
def test_logits_do_not_depend_on_padding(rnn_type):
    torch.manual_seed(0)
    model = T.RnnClsNet(vocab_size=10, embed_dim=6, hidden_dim=8, num_layers=2, cls_num=10, rnn_type=rnn_type).eval()
    seq = [3, 7, 1]
    alone = model(torch.tensor([seq]), torch.tensor([3]))
    padded_batch = torch.tensor([seq + [10] * 7, list(range(10))])
    in_batch = model(padded_batch, torch.tensor([3, 10]))  # unsorted lengths, 7 pads
    sorted_batch = T.pad_batch([(seq, 3, 0), (list(range(10)), 10, 0), ([5] * 6, 6, 0)], pad_token=10)
    in_sorted = model(sorted_batch[0], sorted_batch[1], lengths_sorted=True)
    torch.testing.assert_close(in_batch[0], alone[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(in_sorted[2], alone[0], rtol=0, atol=1e-6)
    # without packing the padding would leak in: the padded logits really differ
    assert not torch.allclose(model(padded_batch[:1], torch.tensor([10]))[0], alone[0])


def test_padding_embedding_row_is_zero():
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 1})
    assert model.embedding.padding_idx == 10 and model.embedding.weight[10].abs().sum() == 0
    assert model.fc.out_features == 10 and model.embedding.num_embeddings == 11


# ---------------------------------------------------------------- schedule


def lr_trace(total, warmup, lr=1e-3, min_lr=1e-4, cosine_span="total"):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = T.build_scheduler(optimizer, total, warmup, min_lr, cosine_span)
    trace = [optimizer.param_groups[0]["lr"]]
    for _ in range(total):
        optimizer.step()
        scheduler.step()
        trace.append(optimizer.param_groups[0]["lr"])
    return trace


def test_schedule_warmup_then_cosine():
    lr, min_lr, total, warmup = 1e-3, 1e-4, 1000, 100
    trace = lr_trace(total, warmup, lr, min_lr)
    assert trace[0] == pytest.approx(0.01 * lr)
    assert trace[warmup // 2] == pytest.approx(lr * (0.01 + 0.99 * 0.5))
    assert trace[warmup] == pytest.approx(lr)
    assert max(trace) == pytest.approx(lr)
    # the cosine runs over total steps, starting after the warmup (as in the article)
    expected_end = min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (total - warmup) / total)) / 2
    assert trace[total] == pytest.approx(expected_end, rel=1e-6)
    assert trace[total] > min_lr


def test_schedule_without_warmup_is_cosine_alone():
    lr, min_lr, total = 1e-3, 1e-4, 1000
    trace = lr_trace(total, 0, lr, min_lr)
    assert trace[0] == pytest.approx(lr)
    assert trace[total // 2] == pytest.approx((lr + min_lr) / 2)
    assert trace[total] == pytest.approx(min_lr)


def test_cosine_after_warmup_ends_exactly_at_min_lr():
    lr, min_lr, total, warmup = 1e-3, 1e-4, 1000, 200
    trace = lr_trace(total, warmup, lr, min_lr, cosine_span="after_warmup")
    assert trace[warmup] == pytest.approx(lr)
    assert trace[warmup + (total - warmup) // 2] == pytest.approx((lr + min_lr) / 2)
    assert trace[total] == pytest.approx(min_lr)
    assert lr_trace(total, warmup, lr, min_lr)[:warmup + 1] == trace[:warmup + 1]  # same warmup


# ---------------------------------------------------------------- curriculum


def test_curriculum_adds_longer_sequences_from_its_step_and_is_off_by_default():
    args = T.parse_args(["--min_seq_len", "1", "--max_seq_len", "4", "--curriculum_max_len", "12",
                         "--curriculum_step", "600", "--swanlab_mode", "disabled"])
    stream = variants.curriculum_batches(args, torch.Generator().manual_seed(1), T.training_batches)
    longest = [int(next(stream)[1].max()) for _ in range(1200)]
    assert max(longest[:600]) == 4 and max(longest[600:]) == 12 and min(longest[600:]) > 4
    plain = variants.curriculum_batches(T.parse_args(["--swanlab_mode", "disabled"]), torch.Generator().manual_seed(3),
                                   T.training_batches)
    article = T.training_batches(16, 2, 5, 9, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for _ in range(700) for a, b in zip(next(plain), next(article)))


@pytest.mark.parametrize("flags, words", [
    (["--curriculum_max_len", "5"], "must exceed --max_seq_len"),
    (["--curriculum_max_len", "9", "--curriculum_step", "20000"], "must be in 0..total_steps-1"),
])
def test_bad_curriculum_flags(flags, words, capsys):
    with pytest.raises(SystemExit):
        T.parse_args(flags)
    assert words in capsys.readouterr().err


# ---------------------------------------------------------------- initialisation


@pytest.mark.parametrize("rnn_type", ["rnn", "gru", "lstm"])
def test_orthogonal_init_makes_each_recurrent_block_a_rotation(rnn_type):
    config = {"max_number": 9, "embed_dim": 10, "hidden_dim": 8, "num_layers": 2, "rnn_type": rnn_type}
    torch.manual_seed(0)
    model = variants.initialise_recurrent_weights(T.build_model(config), "orthogonal")
    for layer in range(2):
        weight = getattr(model.rnn, f"weight_hh_l{layer}").detach()
        for block in weight.chunk({"rnn": 1, "gru": 3, "lstm": 4}[rnn_type]):
            assert torch.allclose(block @ block.T, torch.eye(8), atol=1e-5)
    torch.manual_seed(0)
    default = variants.initialise_recurrent_weights(T.build_model(config), "default")
    torch.manual_seed(0)
    untouched = T.build_model(config)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), untouched.state_dict().values()))


# ---------------------------------------------------------------- evaluation


def test_evaluation_reports_the_residues_the_model_gets_right():
    eval_set = T.make_eval_set(500, 2, 5, 9, seed=1)
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 1})
    scores = T.evaluate(model, eval_set, torch.device("cpu"), divisors=T.proper_divisors(10))
    assert set(scores) == {"loss", "accuracy", "accuracy_mod2", "accuracy_mod5"}
    inputs, lengths, targets = eval_set
    with torch.no_grad():
        predictions = model(inputs, lengths, lengths_sorted=True).argmax(dim=1)
    assert scores["accuracy_mod2"] == (predictions % 2 == targets % 2).sum().item() / 500
    assert scores["accuracy_mod5"] == (predictions % 5 == targets % 5).sum().item() / 500
    assert scores["accuracy"] <= min(scores["accuracy_mod2"], scores["accuracy_mod5"])
    assert T.proper_divisors(2) == [] and T.proper_divisors(12) == [2, 3, 4, 6]


# ---------------------------------------------------------------- flags


BAD_FLAGS = [
    ["--min_seq_len", "0"], ["--min_seq_len", "6"], ["--max_number", "0"],
    ["--total_steps", "0"], ["--batch_size", "0"], ["--embed_dim", "-1"], ["--hidden_dim", "0"],
    ["--num_layers", "0"], ["--lr", "0"], ["--lr", "nan"], ["--log_every", "0"], ["--eval_every", "0"],
    ["--warmup_step", "-1"], ["--min_lr", "-0.1"], ["--save_every", "-5"],
    ["--warmup_step", "300", "--total_steps", "300"], ["--warmup_step", "1.5"], ["--grad_clip", "-1"],
    ["--rnn_type", "transformer"], ["--swanlab_mode", "cloud"], ["--eval_samples", "0"],
    ["--digit_skew", "1.5"], ["--hard_share", "-0.1"], ["--hard_share", "nan"], ["--state_noise", "-1"],
    ["--loss_at", "middle"], ["--hard_max_len", "-3"], ["--hard_max_len", "1001"],
    ["--hard_max_len", "1", "--min_seq_len", "2"], ["--stretch_penalty", "-1"], ["--stretch_penalty", "inf"],
    ["--stretch_penalty", "1", "--rnn_type", "gru"], ["--stretch_penalty", "1", "--num_layers", "2"],
    ["--forget_penalty", "-1"], ["--forget_penalty", "nan"], ["--harden_by", "-1"],
    ["--harden_by", "301", "--total_steps", "300"], ["--restart_by", "-5"],
]


@pytest.mark.parametrize("flags", BAD_FLAGS, ids=" ".join)
def test_bad_flags_exit_2_with_a_message(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        T.parse_args(flags)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("usage:") is False and "error:" in message
    assert flags[0].lstrip("-").split("_")[0] in message


def test_bad_flag_from_the_command_line_has_no_traceback(tmp_path):
    out = run_script("train_cls_rnn.py", "--min_seq_len", "4", "--max_seq_len", "3", cwd=tmp_path)
    assert out.returncode == 2
    assert "must not exceed --max_seq_len" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "output").exists()


def test_article_commands_parse():
    args = T.parse_args("--hidden_dim 32 --num_layers 3 --batch_size 64 --lr 0.005 --warmup_step 2000 "
                        "--run_name sota_warmup".split())
    assert (args.hidden_dim, args.num_layers, args.batch_size, args.lr, args.warmup_step) == (32, 3, 64, 0.005, 2000)
    defaults = T.parse_args([])
    assert (defaults.total_steps, defaults.batch_size, defaults.lr, defaults.min_lr, defaults.warmup_step) == (
        20000, 16, 0.001, 0.0001, 100)
    assert (defaults.save_every, defaults.save_dir, defaults.run_name, defaults.swanlab_mode) == (
        1000, os.path.join("./output", "baseline"), "baseline", "local")
    assert args.save_dir == os.path.join("./output", "sota_warmup")  # each named run has its own folder
    assert T.parse_args(["--run_name", "x", "--save_dir", "./output"]).save_dir == "./output"  # the article's layout


# ---------------------------------------------------------------- end to end


def test_end_to_end_run_writes_config_and_checkpoints(tmp_path):
    out = run_script("train_cls_rnn.py", *QUICK, "--save_every", "100", "--save_dir", "out",
                     "--swanlab_dir", "logs", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["args.json", "args.pt", "model_step_100.pt", "model_step_200.pt", "model_step_300.pt",
                     "result.json"]
    with torch.serialization.safe_globals([argparse.Namespace]):  # the article's format, and nothing else
        namespace = torch.load(tmp_path / "out" / "args.pt", weights_only=True)
    assert isinstance(namespace, argparse.Namespace)
    config = runs.read_config(str(tmp_path / "out" / "args.pt"))
    assert config == vars(namespace) == json.loads((tmp_path / "out" / "args.json").read_text())
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["steps"] == 300 and not result["interrupted"] and 0 <= result["accuracy"] <= 1
    assert config["total_steps"] == 300 and config["seed"] == 42 and config["swanlab_mode"] == "local"
    state = torch.load(tmp_path / "out" / "model_step_300.pt", weights_only=True)
    assert set(state) >= {"embedding.weight", "fc.weight", "rnn.weight_ih_l0"}
    assert any(p.name.startswith("run-") for p in (tmp_path / "logs").iterdir())  # SwanLab wrote locally
    assert "Trained 300 steps in" in out.stdout and "on the CPU, 1 thread (" in out.stdout
    assert "swanlab watch logs" in out.stdout
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".tmp")]


def test_save_every_zero_writes_only_the_final_checkpoint(tmp_path):
    result = T.train(quick_args(tmp_path, "--save_every", "0"), progress="none")
    assert sorted(os.listdir(tmp_path / "out")) == ["args.json", "args.pt", "model_step_300.pt", "result.json"]
    assert result["steps"] == 300 and result["final"]["step"] == 300


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    def weights(seed, name):
        T.train(quick_args(tmp_path / name, "--seed", str(seed)), progress="none")
        return torch.load(tmp_path / name / "out" / "model_step_300.pt", weights_only=True)

    a, b, c = weights(7, "a"), weights(7, "b"), weights(8, "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_existing_run_is_refused_then_replaced_with_overwrite(tmp_path):
    save = ["--save_dir", "out", "--swanlab_mode", "disabled", "--save_every", "100"]
    assert run_script("train_cls_rnn.py", *QUICK, *save, cwd=tmp_path).returncode == 0
    before = {n: (tmp_path / "out" / n).read_bytes() for n in os.listdir(tmp_path / "out")}
    (tmp_path / "out" / "notes.txt").write_text("mine")

    refused = run_script("train_cls_rnn.py", *QUICK, *save, "--hidden_dim", "8", cwd=tmp_path)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    assert "--run_name" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1  # both ways out
    assert {n: (tmp_path / "out" / n).read_bytes() for n in before} == before  # untouched

    replaced = run_script("train_cls_rnn.py", *QUICK, "--total_steps", "200", *save, "--hidden_dim", "8",
                          "--overwrite", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert sorted(os.listdir(tmp_path / "out")) == [
        "args.json", "args.pt", "model_step_100.pt", "model_step_200.pt", "notes.txt", "result.json"]
    assert runs.read_config(str(tmp_path / "out" / "args.pt"))["hidden_dim"] == 8


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model_step_1.pt"
    runs.save_atomic({"w": torch.ones(3)}, str(path))

    def crash(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(T.torch, "save", crash)
    with pytest.raises(OSError):
        runs.save_atomic({"w": torch.zeros(3)}, str(path))
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["model_step_1.pt"]


def test_ctrl_c_saves_the_current_step_and_exits_cleanly(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "train_cls_rnn.py"), "--save_dir", "out", "--swanlab_dir", "logs",
         "--log_every", "100", "--total_steps", "1000000", "--save_every", "0"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_ctrl_c,
    )
    for line in proc.stdout:  # wait until training is under way
        if line.startswith("step 200/"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Interrupted at step" in stdout and "Traceback" not in stderr
    found = runs.list_checkpoints(str(tmp_path / "out"))
    assert len(found) == 1 and found[0][0] >= 200
    model, _, _ = P.load_trained_model(str(tmp_path / "out"))
    assert isinstance(model, T.RnnClsNet)


# ---------------------------------------------------------------- it learns


def test_a_small_task_is_learned(tmp_path):
    """Parity of 2-5 bits: chance is 50%; a broken model, loss or packing stays near it."""
    args = quick_args(tmp_path, "--max_number", "1", "--total_steps", "1500", "--warmup_step", "100",
                      "--eval_samples", "2000")
    result = T.train(args, progress="none")
    assert result["final"]["accuracy"] >= 0.9
    assert result["history"][0]["accuracy"] < result["final"]["accuracy"]
    assert "accuracy_mod2" not in result["final"]  # a modulus of 2 has no proper divisor


def test_online_mode_without_login_fails_with_one_line_and_writes_nothing(tmp_path):
    env_home = tmp_path / "home"
    env_home.mkdir()
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train_cls_rnn.py"), *QUICK, "--swanlab_mode", "online",
         "--save_dir", "out"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SWANLAB")} | {"HOME": str(env_home)},
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: SwanLab could not start in online mode") and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_clear_flag_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        T.parse_args(["--device", "cuda"])
    assert exit_info.value.code == 2 and "no CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize("rnn_type", sorted(T.RNN_TYPES))
def test_size_limits_count_the_parameters_of_every_cell_type(rnn_type):
    """limits.py estimates memory from its own formula: it must match the real model of every cell type."""
    assert set(limits.GATES) == set(T.RNN_TYPES)
    for layers in (1, 3):
        config = {"max_number": 9, "embed_dim": 7, "hidden_dim": 12, "num_layers": layers, "rnn_type": rnn_type}
        assert limits.parameter_count(config) == sum(p.numel() for p in T.build_model(config).parameters())


def test_the_training_script_never_imports_itself_as_a_library(tmp_path):
    """Run as __main__, train_cls_rnn.py must not be imported again under its module name by its helpers."""
    probe = ("import runpy, sys\nsys.argv = ['train_cls_rnn.py', '--help']\n"
             f"try:\n    runpy.run_path({os.path.join(ROOT, 'train_cls_rnn.py')!r}, run_name='__main__')\n"
             "except SystemExit:\n    pass\nprint('imported twice' if 'train_cls_rnn' in sys.modules else 'once')\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "once" and "usage:" in out.stdout


def article_loop_losses(args, steps):
    """The article's training loop written out plainly (no recipe anywhere): the loss of every step."""
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    batches = T.training_batches(args.batch_size, args.min_seq_len, args.max_seq_len, args.max_number,
                                 torch.Generator().manual_seed(args.seed))
    model = T.build_model(vars(args))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=True)
    scheduler = T.build_scheduler(optimizer, args.total_steps, args.warmup_step, args.min_lr)
    losses = []
    for _ in range(steps):
        inputs, lengths, targets = next(batches)
        loss = nn.functional.cross_entropy(model(inputs, lengths, lengths_sorted=True), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def test_the_recipe_hook_changes_nothing_at_the_articles_defaults(tmp_path):
    """train() with every recipe flag off is the article's loop, step for step: the same loss at every step as
    the loop written out without any hook, and the hook itself passes the batch through and asks for nothing."""
    args = T.parse_args(["--total_steps", "300", "--log_every", "1", "--eval_every", "100", "--eval_samples", "200",
                         "--swanlab_mode", "disabled", "--save_dir", str(tmp_path / "run")])
    result = T.train(args, progress="none")
    assert [point["loss"] for point in result["train_curve"]] == article_loop_losses(args, 300)
    assert all(set(point) == {"step", "loss", "lr"} for point in result["train_curve"]) and not result["restarted_at"]
    recipe = H.Recipe(args)
    batch = next(T.training_batches(16, 2, 5, 9, torch.Generator().manual_seed(0)))
    assert all(a is b for a, b in zip(recipe.batch(*batch), batch))
    assert recipe.after_eval(500, 1.0, result["model"]) is False  # found: nothing waits for it at the defaults
    assert not recipe.changes_loss and recipe.hard.pool is None and recipe.logged(torch.ones(()), torch.ones(())) == {}
    assert recipe.after_eval(20000, 0.1, result["model"]) is False  # never a restart without --restart_by


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_noisy_forward_is_the_packed_forward_when_the_noise_is_zero(cell):
    """--state_noise steps the cell one digit at a time: with no noise it must be the packed model exactly,
    ended sequences keeping their state through the padding; with noise it must differ and still train."""
    torch.manual_seed(0)
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 2, "rnn_type": cell})
    inputs, lengths, targets = (b[0] for b in T.random_batches(1, 32, 1, 10, 9, torch.Generator().manual_seed(1)))
    assert lengths.min() < lengths.max()  # padding is exercised
    packed = model(inputs, lengths, lengths_sorted=True)
    assert torch.allclose(H.noisy_logits(model, inputs, lengths, 0.0), packed, atol=1e-6)
    noisy = H.noisy_logits(model, inputs, lengths, 0.5)
    assert not torch.allclose(noisy, packed, atol=1e-3)
    nn.functional.cross_entropy(noisy, targets).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.rnn.parameters())


ONE_BIT = ["--max_number", "1", "--min_seq_len", "1", "--max_seq_len", "1", "--hidden_dim", "8", "--num_layers", "1",
           "--lr", "0.01", "--log_every", "10", "--eval_every", "50"]  # the parity of one bit: found in a few steps


def losses_and_history(folder, *flags):
    """A quick run's logged training losses and its evaluations."""
    result = T.train(quick_args(folder, *flags), progress="none")
    return [p["loss"] for p in result["train_curve"]], result["history"]


def test_state_noise_from_found_trains_without_noise_until_the_first_evaluation_at_99_percent(tmp_path):
    """--state_noise_from found, --hard_share and --stretch_penalty: the same steps as none of them until an
    evaluation reaches 99%, different ones after."""

    def losses(name, *extra):
        return losses_and_history(tmp_path / name, *ONE_BIT, *extra)

    plain, history = losses("plain")
    found, _ = losses("found", "--state_noise", "0.5", "--state_noise_from", "found")
    start, _ = losses("start", "--state_noise", "0.5")
    hard, _ = losses("hard", "--hard_share", "0.5")  # the hard sequences too begin once the task is found
    stretch, _ = losses("stretch", "--stretch_penalty", "0.1")  # and so does the stretch penalty
    first = next(r["step"] for r in history if r["accuracy"] >= 0.99)
    assert 0 < first < 300
    before = first // 10  # the losses logged up to that evaluation
    assert found[:before] == plain[:before] and found[before:] != plain[before:]
    assert hard[:before] == plain[:before] and hard[before:] != plain[before:]
    assert stretch[:before] == plain[:before] and stretch[before:] != plain[before:]
    assert start[:before] != plain[:before]


def test_harden_by_starts_the_hardening_of_a_run_that_has_not_found_the_task_and_changes_no_other_run(tmp_path):
    """--harden_by N: a run that no evaluation has scored at 99% by step N is hardened from the evaluation at N (the
    same losses as without the flag up to it, different after); a run found earlier is the same run, step for step."""
    hardening = ["--state_noise", "0.5", "--state_noise_from", "found", "--hard_share", "0.5"]

    def losses(name, *extra):
        return losses_and_history(tmp_path / name, *hardening, *extra)

    lost = ["--log_every", "10", "--eval_every", "50"]  # the article's task in 300 steps: never found
    plain, history = losses("lost", *lost)
    assert max(r["accuracy"] for r in history) < 0.99
    late, _ = losses("late", *lost, "--harden_by", "100")
    assert late[:10] == plain[:10] and late[10:] != plain[10:]  # logged at steps 10..100, then 110..

    found, history = losses("found", *ONE_BIT)
    assert next(r["step"] for r in history if r["accuracy"] >= 0.99) < 250
    assert losses("found_late", *ONE_BIT, "--harden_by", "250")[0] == found


def test_restart_by_starts_a_run_that_has_not_found_the_task_again_and_changes_no_other_run(tmp_path):
    """--restart_by N: a run that no evaluation has scored at 99% by step N starts again there from new weights,
    with the schedule again over the steps left; a run found earlier is the same run, step for step."""
    lost = ["--log_every", "10", "--eval_every", "50", "--warmup_step", "20"]  # the article's task: not found in 300
    plain = T.train(quick_args(tmp_path / "lost", *lost), progress="none")
    assert max(r["accuracy"] for r in plain["history"]) < 0.99 and plain["restarted_at"] is None
    again = T.train(quick_args(tmp_path / "again", *lost, "--restart_by", "80"), progress="none")
    assert again["restarted_at"] == 100  # the first evaluation at or after step 80
    with open(tmp_path / "again" / "out" / "result.json") as f:
        assert json.load(f)["restarted_at"] == 100
    assert again["train_curve"][:10] == plain["train_curve"][:10]  # logged at steps 10..100
    assert again["train_curve"][10]["loss"] != plain["train_curve"][10]["loss"]

    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=again["config"]["lr"])
    schedule = T.build_scheduler(optimizer, 200, 20, again["config"]["min_lr"])  # the 200 steps left
    fresh = []
    for step in range(1, 201):
        optimizer.step()
        schedule.step()
        if step % 10 == 0:
            fresh.append(schedule.get_last_lr()[0])
    assert [p["lr"] for p in again["train_curve"][10:]] == pytest.approx(fresh, rel=1e-9)

    found, history = losses_and_history(tmp_path / "found", *ONE_BIT)
    assert next(r["step"] for r in history if r["accuracy"] >= 0.99) < 250
    assert losses_and_history(tmp_path / "found_late", *ONE_BIT, "--restart_by", "250")[0] == found


def test_box_stretch_is_tanhs_slope_times_each_row_of_weights_at_the_states_reached():
    """--stretch_penalty: per running position, the sum over units of ((1 - h_i^2) * sum_j |W_ij|)^2, where h is
    the cell's own output (before any noise); padded positions count for nothing."""
    torch.manual_seed(0)
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 2, "num_layers": 1})
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))  # rows sum to 3 and 0.5
    outputs = torch.tensor([[0.0, 0.5], [0.6, -0.8], [0.0, 0.0]])  # (running positions, hidden)
    first = 3.0**2 + (0.75 * 0.5) ** 2
    second = (0.64 * 3.0) ** 2 + (0.36 * 0.5) ** 2
    third = 3.0**2 + 0.5**2  # h = 0: tanh's slope is 1
    assert math.isclose(H.box_stretch(model, outputs).item(), (first + second + third) / 3, rel_tol=1e-6)

    inputs, lengths, _ = (b[0] for b in T.random_batches(1, 16, 1, 6, 9, torch.Generator().manual_seed(1)))
    final, carried, outputs = model.noisy_states(inputs, lengths, noise=0.5)
    carried, outputs = (pad_packed_sequence(p, batch_first=True)[0] for p in (carried, outputs))
    assert outputs.abs().max() < 1  # tanh's own outputs, not the noisy states carried on
    assert torch.equal(final, carried[torch.arange(len(lengths)), lengths - 1])  # each sequence's own last digit
    rnn = model.rnn
    for t in range(1, inputs.shape[1]):  # each output is the cell applied to the noisy state carried to it
        pre = (model.embedding(inputs[:, t]) @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
               + carried[:, t - 1] @ rnn.weight_hh_l0.T + rnn.bias_hh_l0)
        running = t < lengths
        assert torch.allclose(outputs[running, t], torch.tanh(pre)[running], atol=1e-6)


class SteppedNet(T.RnnClsNet):
    """The model with its tanh cell's fast forms replaced by the stepped ones (the code before they existed)."""

    noisy_states = T.RnnClsNet.noisy_states_stepped
    step_each_digit = T.RnnClsNet.step_each_digit_stepped


@pytest.mark.parametrize("layers", [1, 2])
def test_fast_noisy_pass_equals_the_stepped_one_with_the_same_noise_gradients_included(layers):
    """noisy_states of a tanh cell (NoisyTanhRecurrence, its backward written out) against the stepped form (autograd
    through run() once per digit): the same draws of the global generator give the same states, outputs and
    gradients, up to float rounding; both draw once, the same numbers, so what is drawn after them is the same too."""
    config = {"max_number": 9, "embed_dim": 10, "hidden_dim": 8, "num_layers": layers}
    torch.manual_seed(0)
    fast = T.build_model(config)
    stepped = SteppedNet(10, 10, 8, layers, 10)
    stepped.load_state_dict(fast.state_dict())
    inputs, lengths, _ = (b[0] for b in T.random_batches(1, 64, 1, 10, 9, torch.Generator().manual_seed(1)))
    inputs = nn.functional.pad(inputs, (0, 2), value=10)  # two columns of padding alone, as hard sequences make
    results = []
    for model in (fast, stepped):
        torch.manual_seed(5)
        final, carried, outputs = model.noisy_states(inputs, lengths, 0.3)
        after = torch.rand(3)
        loss = (final**2).sum() + (carried.data**3).sum() + outputs.data.sum()
        grads = torch.autograd.grad(loss, list(model.embedding.parameters()) + list(model.rnn.parameters()))
        results.append((final, carried.data, outputs.data, carried.batch_sizes, after, grads))
    (f1, c1, o1, b1, a1, g1), (f2, c2, o2, b2, a2, g2) = results
    assert torch.equal(b1, b2) and torch.equal(a1, a2)
    assert not torch.allclose(f1, fast.noisy_states(inputs, lengths, 0.0)[0], atol=1e-3)  # the noise is there
    for x, y in [(f1, f2), (c1, c2), (o1, o2), *zip(g1, g2)]:  # to float rounding at the tensor's own scale
        assert (x - y).abs().max() <= 1e-5 * x.abs().max() + 1e-6


def test_search_pool_of_the_fast_step_equals_the_stepped_ones():
    """The hard sequences' search with step_each_digit (each state's W_hh h shared by its ten children) finds the
    same pool as stepping every child, and the audit's search the same first wrong sequence."""
    torch.manual_seed(0)
    fast = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 1})
    stepped = SteppedNet(10, 10, 16, 1, 10)
    stepped.load_state_dict(fast.state_dict())
    pools = []
    for model in (fast, stepped):
        hard = H.HardSequences(0.25, 128, 1, 8, 9, seed=0, pool=400)
        hard.refresh(model)
        pools.append(hard.pool)
    assert all(torch.equal(a, b) for a, b in zip(*pools))
    assert len(pools[0][0]) == 10 + 7 * 50  # the ten one-digit sequences, and 400 // 8 of each longer length
    assert searches.search(fast, 10, max_length=8) == searches.search(stepped, 10, max_length=8)


def test_forget_penalty_partners_share_the_sum_and_the_last_two_digits_and_their_states_are_compared(tmp_path):
    """--forget_penalty: every sequence of more than two digits gets a partner of its length with its last two
    digits and its sum, whose older digits come from another sequence of the batch; the penalty is the mean squared
    distance of the two final states, as the model computes them one sequence at a time."""
    torch.manual_seed(0)
    inputs, lengths, _ = (b[0] for b in T.random_batches(1, 64, 1, 8, 9, torch.Generator().manual_seed(1)))
    own, partner, kept = H.partners(inputs, lengths, 10, torch.Generator().manual_seed(2))
    assert len(kept) == int((lengths > 2).sum()) > 0
    older_digits = set()
    for a, b, n in zip(own.tolist(), partner.tolist(), kept.tolist()):
        assert sum(a[:n]) % 10 == sum(b[:n]) % 10 and a[n - 2 : n] == b[n - 2 : n] and b[n:] == a[n:]
        assert all(0 <= d <= 9 for d in b[:n])
        older_digits.add(tuple(b[1 : n - 2]))
    assert len(older_digits) > len(kept) // 2  # other pasts, not copies

    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 2})
    penalty = H.forgetting(model, inputs, lengths, 10, torch.Generator().manual_seed(2))
    with torch.no_grad():
        final = [model.rnn(model.embedding(torch.tensor([seq[:n]])))[1][-1, 0] for pair in (own, partner)
                 for seq, n in zip(pair.tolist(), kept.tolist())]
    expected = sum(float(((a - b) ** 2).sum()) for a, b in zip(final[: len(kept)], final[len(kept):])) / len(kept)
    assert math.isclose(penalty.item(), expected, rel_tol=1e-5) and expected > 0
    penalty.backward()
    assert model.rnn.weight_hh_l0.grad.abs().sum() > 0

    # in training it waits, like the stretch penalty, for the first evaluation at 99%
    four_bits = ["--max_number", "1", "--min_seq_len", "1", "--max_seq_len", "4", "--hidden_dim", "16", "--lr", "0.02",
                 "--log_every", "10", "--eval_every", "50"]  # the parity of up to four bits: partners differ
    plain, history = losses_and_history(tmp_path / "plain", *four_bits)
    forgot_run = T.train(quick_args(tmp_path / "forgot", *four_bits, "--forget_penalty", "1"), progress="none")
    curve = forgot_run["train_curve"]
    forgot = [p["loss"] for p in curve]
    first = next(r["step"] for r in history if r["accuracy"] >= 0.99)
    assert 0 < first < 300 and forgot[: first // 10] == plain[: first // 10] and forgot != plain
    # the logged loss is the cross-entropy alone; the penalty, logged beside it, is 0 until the task is found
    penalties = [p["penalties"] for p in curve]
    assert set(penalties[: first // 10]) == {0.0} and max(penalties[first // 10 :]) > 0


def test_the_stretch_weight_rises_while_the_model_is_right_and_halves_when_it_is_not():
    weight = H.PenaltyWeight(0.1, total_steps=1000, eval_every=100)
    seen = []
    for accuracy, found_at in [(0.5, None), (1.0, None), (1.0, 200), (1.0, 200), (0.99, 200), (1.0, 200)]:
        weight.update(accuracy, found_at)
        seen.append(weight.weight)
    step = 0.1 * 100 / 800  # an equal share of the 800 steps left once found
    assert seen == pytest.approx([0, 0, step, 2 * step, step, 2 * step])
    for _ in range(20):
        weight.update(1.0, 200)
    assert weight.weight == pytest.approx(0.1)  # never above the flag's value
    off = H.PenaltyWeight(0.0, 1000, 100)
    off.update(1.0, 0)
    assert off.weight == 0


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_every_digit_logits_read_the_state_after_each_digit(cell):
    """--loss_at every_digit: the read-out after digit t is the model's answer to the first t+1 digits, by the
    packed pass and by the one-digit-at-a-time pass alike, and each prefix is scored against its own sum."""
    torch.manual_seed(0)
    model = T.build_model({"max_number": 9, "embed_dim": 10, "hidden_dim": 16, "num_layers": 2, "rnn_type": cell})
    inputs, lengths, targets = (b[0] for b in T.random_batches(1, 32, 1, 10, 9, torch.Generator().manual_seed(1)))
    every = model.prefix_logits(inputs, lengths, lengths_sorted=True)
    stepped = H.noisy_logits(model, inputs, lengths, 0.0, every_digit=True)
    wanted = H.prefix_targets(inputs, 9)
    for i, length in enumerate(lengths.tolist()):
        for t in range(length):
            prefix = inputs[i : i + 1, : t + 1]
            alone = model(prefix, torch.tensor([t + 1]))[0]
            assert torch.allclose(every[i, t], alone, atol=1e-5) and torch.allclose(stepped[i, t], alone, atol=1e-5)
            assert wanted[i, t] == sum(inputs[i, : t + 1].tolist()) % 10
        assert (wanted[i, length:] == -100).all()
        assert wanted[i, length - 1] == targets[i]


def test_loss_at_every_digit_trains_on_every_prefix(tmp_path):
    """The parity of up to eight bits: scored after every bit, the network learns it; the loss is not the
    loss on the last bit alone (the first logged losses differ from those of the article's loss)."""
    easy = ["--max_number", "1", "--min_seq_len", "1", "--max_seq_len", "8", "--hidden_dim", "16",
            "--num_layers", "1", "--lr", "0.01", "--total_steps", "400", "--log_every", "10", "--eval_every", "100"]
    every = T.train(quick_args(tmp_path / "every", *easy, "--loss_at", "every_digit"), progress="none")
    end = T.train(quick_args(tmp_path / "end", *easy), progress="none")
    assert every["final"]["accuracy"] >= 0.99 and every["final"]["accuracy_long"] >= 0.99
    assert every["train_curve"][0]["loss"] != end["train_curve"][0]["loss"]


def test_hard_sequences_are_the_ones_the_model_answers_worst_and_keep_the_batch_whole():
    """--hard_share: the pool holds trained-length sequences with their true sums, the planted flaw's wrong
    answers among them; mixing replaces exactly `count` sequences and keeps the batch sorted for packing."""
    from audit_fixtures import exact_adder

    flawed = exact_adder(swap=(3, 7))  # after a 0, a sum of 3 is taken for 7 and 7 for 3
    hard = H.HardSequences(0.25, 16, 2, 4, 9, seed=0, pool=30)
    hard.refresh(flawed)
    inputs, lengths, targets = hard.pool
    assert len(lengths) == 30 and lengths.min() == 2 and lengths.max() == 4
    rows = [inputs[i, :n].tolist() for i, n in enumerate(lengths.tolist())]
    assert targets.tolist() == [sum(r) % 10 for r in rows] and (inputs[lengths == 2, 2:] == 10).all()
    wrong = [r for r in rows if int(flawed(torch.tensor([r]), torch.tensor([len(r)])).argmax()) != sum(r) % 10]
    assert [3, 0] in wrong and [7, 0] in wrong

    batch = [b[0] for b in T.random_batches(1, 16, 1, 10, 9, torch.Generator().manual_seed(1))]
    mixed = hard.mix(*batch)
    assert [len(part) for part in mixed] == [16, 16, 16] and mixed[0].shape[1] == 10
    assert (mixed[1][:-1] >= mixed[1][1:]).all()  # sorted by decreasing length
    as_rows = Counter(tuple(mixed[0][i, :n].tolist()) for i, n in enumerate(mixed[1].tolist()))
    kept = Counter(tuple(batch[0][i, :n].tolist()) for i, n in enumerate(batch[1][:12].tolist()))
    assert not kept - as_rows and sum((as_rows - kept).values()) == 4
    assert all(len(r) <= 4 for r in as_rows - kept)
    assert mixed[2].tolist() == [sum(mixed[0][i, :n].tolist()) % 10 for i, n in enumerate(mixed[1].tolist())]
    longer = H.HardSequences(0.5, 16, 1, 12, 9, seed=0, pool=24)  # --hard_max_len 12 beside batches of 10
    longer.refresh(flawed)
    assert longer.pool[0].shape == (24, 12) and longer.pool[1].max() == 12
    inputs, lengths, targets = longer.mix(*batch)
    assert inputs.shape == (16, 12) and lengths.max() <= 12 and (inputs[lengths <= 10, 10:] == 10).all()
