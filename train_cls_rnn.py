"""Train an RNN to predict the sum of a digit sequence modulo 10.

A faithful, runnable reproduction of the training script from the two-part
"RNN archaeology" tutorial: random variable-length digit sequences, padded
batches packed with pack_padded_sequence, Embedding -> stacked nn.RNN -> Linear
on the last hidden state, Adam with linear warmup + cosine decay, SwanLab logs.

    python train_cls_rnn.py                                   # the article's baseline
    python train_cls_rnn.py --hidden_dim 32 --num_layers 3 --batch_size 64 \\
        --lr 0.005 --warmup_step 2000 --run_name sota_warmup   # its best recipe
    swanlab watch ./swanlog                                   # open the dashboard

Sections, in the article's order: 1. data  2. model  3. schedule  4. evaluation
5. training  6. command line. What is not the tutorial (run folders, size
limits and flag checks, SwanLab, progress, the recipes' extras) lives in
rnn_tutorial/: runs.py, limits.py, tracking.py, console.py and hardening.py.
"""

import argparse
import os
import random
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import IterableDataset

from rnn_tutorial import hardening, limits, runs
from rnn_tutorial.console import OneLineErrorParser, Progress, print_summary
from rnn_tutorial.runs import CheckpointError
from rnn_tutorial.tracking import Tracker, TrackingError

# The evaluation sets are drawn from their own fixed seeds, independent of --seed,
# so every run (any seed, any flags) is scored on exactly the same sequences.
EVAL_SEED = 1_000_003
EVAL_LONG_SEED = 2_000_003


# ----------------------------------------------------------------------------
# 1. Data
# ----------------------------------------------------------------------------


class SeqSumModDataset(IterableDataset):
    """Random digit sequences X with target Y = sum(X) mod (max_number + 1), as (digits, length, target).

    A length uniform in [min_seq_len, max_seq_len], then that many digits uniform
    in [0, max_number]. total_samples=None streams forever. With a seed every
    iteration yields the same samples (a fixed set); without, Python's global RNG.
    """

    def __init__(self, total_samples=None, min_seq_len=2, max_seq_len=5, max_number=9, seed=None):
        self.total_samples = total_samples
        self.min_seq_len = min_seq_len
        self.max_seq_len = max_seq_len
        self.max_number = max_number
        self.seed = seed

    def __iter__(self):
        rng = random if self.seed is None else random.Random(self.seed)
        count = 0
        while self.total_samples is None or count < self.total_samples:
            length = rng.randint(self.min_seq_len, self.max_seq_len)
            digits = [rng.randint(0, self.max_number) for _ in range(length)]
            yield digits, length, sum(digits) % (self.max_number + 1)
            count += 1


# A batch of three sequences, padded with P (the pad token, whose embedding row is zero), and as packing feeds it:
#   padded (batch, time):  3 7 1 9     packed, one time step at a time, only the sequences still running:
#                          5 8 P P       t=0: [3 5 2]  t=1: [7 8]  t=2: [1]  t=3: [9]
#                          2 P P P       batch_sizes = [3, 2, 1, 1]; h_n holds each sequence's state at its own end
def pad_batch(samples, pad_token):
    """Collate (digits, length, target) samples into padded tensors.

    The batch is sorted by decreasing length so that packing need not reorder
    it (the loss is a mean over the batch, so the order does not matter).
    """
    samples = sorted(samples, key=lambda sample: sample[1], reverse=True)
    digits, lengths, targets = zip(*samples)
    inputs = pad_sequence([torch.tensor(d) for d in digits], batch_first=True, padding_value=pad_token)
    return inputs, torch.tensor(lengths), torch.tensor(targets)


def random_batches(num_batches, batch_size, min_seq_len, max_seq_len, max_number, generator, digit_skew=0.0):
    """num_batches padded batches of SeqSumModDataset's law, drawn at once without a loop per digit.

    Digits drawn for padded positions are discarded; each batch is sorted by
    decreasing length. Shapes: (num_batches, batch_size[, max_seq_len]).
    digit_skew > 0 (beyond the article): each sequence has a favourite digit, which each of its digits
    is with probability p (uniform in [0, digit_skew]): runs and mostly-zero sequences become common.
    """
    shape = (num_batches, batch_size)
    lengths = torch.randint(min_seq_len, max_seq_len + 1, shape, generator=generator)
    lengths = lengths.sort(dim=1, descending=True).values
    digits = torch.randint(0, max_number + 1, (*shape, max_seq_len), generator=generator)
    if digit_skew > 0:  # with 0, not one extra number is drawn: the article's stream, bit for bit
        favourite = torch.randint(0, max_number + 1, (*shape, 1), generator=generator)
        share = digit_skew * torch.rand((*shape, 1), generator=generator)
        digits = torch.where(torch.rand(digits.shape, generator=generator) < share, favourite, digits)
    padding = torch.arange(max_seq_len) >= lengths[..., None]
    targets = digits.masked_fill(padding, 0).sum(dim=-1) % (max_number + 1)
    inputs = digits.masked_fill(padding, max_number + 1)
    return inputs, lengths, targets


def training_batches(batch_size, min_seq_len, max_seq_len, max_number, generator, chunk=500, digit_skew=0.0):
    """Endless (inputs, lengths, targets) batches, drawn chunk batches at a time."""
    while True:
        yield from zip(*random_batches(chunk, batch_size, min_seq_len, max_seq_len, max_number, generator,
                                       digit_skew))


def curriculum_batches(args, generator, chunk=500):
    """The training stream: lengths min..max_seq_len, and from --curriculum_step on (if set, beyond
    the article) lengths min..curriculum_max_len: learn the short cases first, then hold the sum longer."""
    short = training_batches(args.batch_size, args.min_seq_len, args.max_seq_len, args.max_number, generator, chunk,
                             args.digit_skew)
    if not args.curriculum_max_len:
        yield from short
        return
    for _ in range(args.curriculum_step):
        yield next(short)
    longer = dict(vars(args), max_seq_len=args.curriculum_max_len)
    yield from training_batches(args.batch_size, args.min_seq_len, args.curriculum_max_len, args.max_number,
                                generator, limits.data_chunk(longer), args.digit_skew)


def make_eval_set(num_samples, min_seq_len, max_seq_len, max_number, seed):
    """A fixed evaluation set: the same seed always gives the same padded tensors."""
    dataset = SeqSumModDataset(num_samples, min_seq_len, max_seq_len, max_number, seed=seed)
    return pad_batch(list(dataset), pad_token=max_number + 1)


# ----------------------------------------------------------------------------
# 2. Model
# ----------------------------------------------------------------------------

RNN_TYPES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RnnClsNet(nn.Module):
    """Embedding -> stacked RNN over the packed batch -> Linear on h_n of the last layer."""

    def __init__(self, vocab_size=10, embed_dim=10, hidden_dim=16, num_layers=1, cls_num=10, rnn_type="rnn"):
        super().__init__()
        # One extra row for the padding token (index vocab_size); it stays zero.
        self.embedding = nn.Embedding(vocab_size + 1, embed_dim, padding_idx=vocab_size)
        self.rnn = RNN_TYPES[rnn_type](embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, cls_num)

    def final_hidden(self, x, seq_lengths, lengths_sorted=False):
        """The last layer's hidden state after each sequence's own last digit: (batch, hidden)."""
        packed = pack_padded_sequence(
            self.embedding(x), seq_lengths.cpu(), batch_first=True, enforce_sorted=lengths_sorted
        )
        _, h_n = self.rnn(packed)  # h_n: (num_layers, batch, hidden), in the batch's own order
        if isinstance(h_n, tuple):  # an LSTM returns (h_n, c_n)
            h_n = h_n[0]
        return h_n[-1]

    def forward(self, x, seq_lengths, lengths_sorted=False):
        """x: (batch, time) token ids; seq_lengths: (batch,) true lengths (kept on the CPU)."""
        return self.fc(self.final_hidden(x, seq_lengths, lengths_sorted))


def initialise_recurrent_weights(model, scheme):
    """'default' keeps PyTorch's uniform init; 'orthogonal' (beyond the article) makes every
    hidden-to-hidden matrix a random rotation, so that early on the state neither shrinks
    nor blows up as it is carried from digit to digit."""
    if scheme == "default":
        return model
    for name, weight in model.rnn.named_parameters():
        if name.startswith("weight_hh"):
            for block in weight.data.chunk(weight.shape[0] // weight.shape[1]):  # one block per gate
                nn.init.orthogonal_(block)
    return model


def build_model(config):
    """The model a config describes: max_number + 1 input tokens and as many classes."""
    return RnnClsNet(
        vocab_size=config["max_number"] + 1,
        embed_dim=config["embed_dim"],
        hidden_dim=config["hidden_dim"],
        num_layers=config["num_layers"],
        cls_num=config["max_number"] + 1,
        rnn_type=config.get("rnn_type", "rnn"),
    )


# ----------------------------------------------------------------------------
# 3. Learning-rate schedule
# ----------------------------------------------------------------------------


def build_scheduler(optimizer, total_steps, warmup_step, min_lr, cosine_span="total"):
    """Linear warmup from 1% of lr over warmup_step steps, then cosine decay.

    As in the article (cosine_span="total"), the cosine period is total_steps
    (not total_steps - warmup_step) and starts after the warmup, so a long
    warmup ends training above min_lr. cosine_span="after_warmup" (beyond the
    article) fits the cosine into the steps left after the warmup, so that it
    ends exactly at min_lr. warmup_step=0 gives the cosine alone.
    """
    period = total_steps if cosine_span == "total" else total_steps - warmup_step
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=period, eta_min=min_lr)
    if warmup_step == 0:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup_step
    )
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_step])


# ----------------------------------------------------------------------------
# 4. Evaluation
# ----------------------------------------------------------------------------


def proper_divisors(modulus):
    """2 and 5 for 10: the sum mod 10 is the pair (sum mod 2, sum mod 5)."""
    return [d for d in range(2, modulus) if modulus % d == 0]


@torch.inference_mode()
def evaluate(model, eval_set, device, chunk_size=4096, divisors=()):
    """Mean cross-entropy and accuracy of the model on a padded, length-sorted set.

    With divisors, also how often the answer is right modulo each of them
    (accuracy_mod2, accuracy_mod5): which half of the task a model knows.
    """
    was_training = model.training
    model.eval()
    inputs, lengths, targets = eval_set
    loss_sum, correct = 0.0, 0
    residue_correct = dict.fromkeys(divisors, 0)
    for start in range(0, len(targets), chunk_size):
        x = inputs[start : start + chunk_size].to(device)
        y = targets[start : start + chunk_size].to(device)
        logits = model(x, lengths[start : start + chunk_size], lengths_sorted=True)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        predictions = logits.argmax(dim=1)
        correct += (predictions == y).sum().item()
        for d in divisors:
            residue_correct[d] += (predictions % d == y % d).sum().item()
    model.train(was_training)
    n = len(targets)
    return {"loss": loss_sum / n, "accuracy": correct / n, **{f"accuracy_mod{d}": c / n for d, c in residue_correct.items()}}


# ----------------------------------------------------------------------------
# 5. Training
# ----------------------------------------------------------------------------


def resolve_device(name):
    """auto: CUDA, else Apple's MPS, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device(name)


def train(args, progress="auto"):
    """Train one model as args describe; returns a dict of results (and the model).

    args: an argparse.Namespace (or anything with the flags of build_parser()).
    progress: 'auto', 'bar', 'lines' or 'none'.
    """
    config = dict(vars(args))
    config.pop("overwrite", None)  # how the folder was prepared, not what was trained
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    batches = curriculum_batches(args, torch.Generator().manual_seed(args.seed), chunk=limits.data_chunk(config))

    long_lengths = (args.max_seq_len + 1, 2 * args.max_seq_len)
    build_seconds = MACHINE.eval_build_seconds(config)
    if build_seconds > 3 and progress != "none":
        print(f"building the two evaluation sets of {args.eval_samples:,} sequences (about {build_seconds:.0f} s) ...",
              flush=True)
    eval_sets = {
        "accuracy": make_eval_set(args.eval_samples, args.min_seq_len, args.max_seq_len, args.max_number, EVAL_SEED),
        "accuracy_long": make_eval_set(args.eval_samples, *long_lengths, args.max_number, EVAL_LONG_SEED),
    }

    model = initialise_recurrent_weights(build_model(config), args.init).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=device.type in ("cpu", "cuda"))
    scheduler = build_scheduler(optimizer, args.total_steps, args.warmup_step, args.min_lr, args.cosine_span)
    criterion = nn.CrossEntropyLoss()
    num_params = sum(p.numel() for p in model.parameters())

    tracker = Tracker(config)  # first: if SwanLab cannot start, nothing has been written yet
    try:
        runs.prepare_save_dir(args.save_dir, getattr(args, "overwrite", False))
        runs.save_config(config, args.save_dir)
    except BaseException:
        tracker.finish("crashed")
        raise
    tracker.log({"Model Params": num_params})

    def run_eval(step):
        scores = evaluate(model, eval_sets["accuracy"], device, divisors=proper_divisors(args.max_number + 1))
        record = {"step": step, "accuracy": scores.pop("accuracy"), "eval_loss": scores.pop("loss")}
        record["accuracy_long"] = evaluate(model, eval_sets["accuracy_long"], device)["accuracy"]
        record.update(scores)  # accuracy_mod2, accuracy_mod5
        history.append(record)
        tracker.log({k: v for k, v in record.items() if k != "step"}, step=step)
        return record

    def start_again(step):
        """--restart_by: new weights, a fresh optimizer and the schedule again over the steps left."""
        model.load_state_dict(initialise_recurrent_weights(build_model(config), args.init).state_dict())
        optimizer.state.clear()
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]  # the warmup scales the lr it finds: give it the peak again
        bar.note(f"no evaluation at 99% by step {step}: starting again from new weights")
        return build_scheduler(optimizer, args.total_steps - step, args.warmup_step, args.min_lr, args.cosine_span)

    def save_checkpoint(step):
        runs.save_atomic(model.state_dict(), os.path.join(args.save_dir, f"model_step_{step}.pt"))

    history, train_curve = [], []
    step, state, last_loss = 0, "success", float("nan")
    found_at = None  # the step of the first evaluation at 99%: the recipes' hardening starts there
    restarted_at = None  # --restart_by: once at most
    noise = args.state_noise if args.state_noise_from == "start" else 0.0
    stretch = hardening.PenaltyWeight(args.stretch_penalty, args.total_steps, args.eval_every)
    forget = hardening.PenaltyWeight(args.forget_penalty, args.total_steps, args.eval_every)
    penalised = args.stretch_penalty or args.forget_penalty  # logged apart from the loss: they grow with their weights
    partners = torch.Generator().manual_seed(args.seed)  # --forget_penalty's own stream: the data's is the article's
    hard = hardening.HardSequences(args.hard_share, args.batch_size, args.min_seq_len,
                                   args.hard_max_len or args.max_seq_len, args.max_number, args.seed)
    bar = Progress(args.total_steps, "step", style=progress)
    start = time.perf_counter()
    model.train()
    try:
        while step < args.total_steps:
            inputs, lengths, targets = next(batches)
            inputs = inputs.to(device)
            inputs, lengths, targets = hard.mix(inputs, lengths, targets)  # --hard_share; unchanged when off
            if noise or stretch.weight or forget.weight or args.loss_at != "end":  # beyond the article: recipes
                loss, cross_entropy = hardening.loss(model, criterion, inputs, lengths, targets.to(device), noise,
                                                     args, stretch.weight, forget.weight, partners)
            else:
                loss = cross_entropy = criterion(model(inputs, lengths, lengths_sorted=True), targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.advance()

            shown = {}
            if step % args.log_every == 0:
                last_loss = cross_entropy.item()  # the only host syncs of a training step
                lr = scheduler.get_last_lr()[0]
                extra = {"penalties": (loss - cross_entropy).item()} if penalised else {}
                train_curve.append({"step": step, "loss": last_loss, "lr": lr, **extra})
                tracker.log({"loss": last_loss, "current_lr": lr, **extra}, step=step)
                shown.update(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
            if step % args.eval_every == 0:
                record = run_eval(step)
                late = args.harden_by and step >= args.harden_by  # --harden_by: not found yet, harden it anyway
                if found_at is None and (record["accuracy"] >= 0.99 or late):
                    found_at, noise = step, args.state_noise  # found: harden it from now on
                if args.restart_by and found_at is None and restarted_at is None and step >= args.restart_by:
                    scheduler, restarted_at = start_again(step), step
                stretch.update(record["accuracy"], found_at)
                forget.update(record["accuracy"], found_at)
                if found_at is not None and args.hard_share:
                    hard.refresh(model)
                shown.update(acc=f"{record['accuracy']:.3f}", acc_long=f"{record['accuracy_long']:.3f}")
            if shown:
                bar.show(**shown)
            if args.save_every and step % args.save_every == 0:
                save_checkpoint(step)
    except KeyboardInterrupt:  # stop cleanly: the step reached is saved, evaluated and reported
        state = "aborted"
    bar.close()
    wall_time = time.perf_counter() - start

    if step > 0 and not (args.save_every and step % args.save_every == 0):
        save_checkpoint(step)
    if state == "aborted":
        print(f"\nInterrupted at step {step}/{args.total_steps}.", flush=True)
    if not history or history[-1]["step"] != step:
        run_eval(step)
    tracker.finish(state)

    result = {
        "config": config,
        "steps": step,
        "interrupted": state == "aborted",
        "wall_time_s": wall_time,
        "num_params": num_params,
        "final_loss": last_loss,
        "restarted_at": restarted_at,
        "history": history,
        "train_curve": train_curve,
        "final": history[-1],
        "checkpoint": os.path.join(args.save_dir, f"model_step_{step}.pt") if step else None,
        "model": model,
    }
    if step > 0:
        runs.save_result(result, args.save_dir)
    if progress != "none":
        print_summary(result, long_lengths)
    return result


# ----------------------------------------------------------------------------
# 6. Command line
# ----------------------------------------------------------------------------

MACHINE = limits.Machine(build_model, make_eval_set)  # what this machine can train (size flags are checked)


def build_parser():
    p = OneLineErrorParser(
        description="Train an RNN to predict the sum of a digit sequence modulo max_number + 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=limits.epilog(),
    )
    data = p.add_argument_group("data")
    data.add_argument("--min_seq_len", type=int, default=2, help="shortest training sequence")
    data.add_argument("--max_seq_len", type=int, default=5, help="longest training sequence (size limit below)")
    data.add_argument("--max_number", type=int, default=9,
                      help="digits are 0..max_number; targets mod max_number+1 (size limit below)")
    data.add_argument("--curriculum_max_len", type=int, default=0,
                      help="from --curriculum_step on, train on lengths min_seq_len..this (0 = off; beyond the article)")
    data.add_argument("--curriculum_step", type=int, default=0, help="the step at which longer sequences begin")
    data.add_argument("--digit_skew", type=float, default=0.0,
                      help="0..1: each training sequence favours one digit, with a share up to this "
                           "(0 = uniform digits, the article's; beyond the article; evaluation stays uniform)")
    data.add_argument("--eval_samples", type=int, default=2000,
                      help="size of each fixed evaluation set (size limit below)")
    model = p.add_argument_group("model")
    model.add_argument("--embed_dim", type=int, default=10, help="embedding size (size limit below)")
    model.add_argument("--hidden_dim", type=int, default=16, help="RNN hidden size (size limit below)")
    model.add_argument("--num_layers", type=int, default=1, help="stacked RNN layers (size limit below)")
    model.add_argument("--rnn_type", choices=sorted(RNN_TYPES), default="rnn", help="recurrent cell")
    model.add_argument("--init", choices=["default", "orthogonal"], default="default",
                       help="hidden-to-hidden weights: PyTorch's default, or random orthogonal (beyond the article)")
    optim = p.add_argument_group("training")
    optim.add_argument("--total_steps", type=int, default=20000, help="optimizer steps")
    optim.add_argument("--batch_size", type=int, default=16, help="sequences per step (size limit below)")
    optim.add_argument("--lr", type=float, default=0.001, help="peak learning rate (Adam)")
    optim.add_argument("--min_lr", type=float, default=0.0001, help="floor of the cosine decay")
    optim.add_argument("--warmup_step", type=int, default=100, help="linear warmup steps from 1%% of lr (0 = none)")
    optim.add_argument("--cosine_span", choices=["total", "after_warmup"], default="total",
                       help="cosine period: total_steps, starting after the warmup (the article's), or only "
                            "the steps after the warmup, ending exactly at min_lr (beyond the article)")
    optim.add_argument("--state_noise", type=float, default=0.0, help="std of Gaussian noise added to the hidden "
                       "state after every digit in training (0 = none, the article's; beyond the article)")
    optim.add_argument("--state_noise_from", choices=["start", "found"], default="start",
                       help="the noise from step 1, or from the first evaluation >= 99%% on (beyond the article)")
    optim.add_argument("--loss_at", choices=["end", "every_digit"], default="end",
                       help="the loss on the answer after the last digit (the article's), or after every digit, "
                            "each prefix scored against its own sum (beyond the article)")
    optim.add_argument("--hard_share", type=float, default=0.0,
                       help="0..1: once an evaluation reaches 99%%, this share of every batch is the hardest "
                            "sequences a beam search finds at each evaluation (0 = none; beyond the article)")
    optim.add_argument("--hard_max_len", type=int, default=0, help="longest hard sequence (0 = max_seq_len)")
    optim.add_argument("--stretch_penalty", type=float, default=0.0,
                       help="once an evaluation reaches 99%%, a penalty on how much one digit's step can widen a box "
                            "around the state, its weight rising towards this while the model stays right (one-layer "
                            "rnn only; 0 = none; beyond the article)")
    optim.add_argument("--forget_penalty", type=float, default=0.0,
                       help="once an evaluation reaches 99%%, a penalty on how far apart the states after two "
                            "sequences with the same sum and last two digits end, its weight rising towards this "
                            "while the model stays right (0 = none; beyond the article)")
    optim.add_argument("--harden_by", type=int, default=0,
                       help="start what waits for 99%% (noise once found, hard sequences, penalty) at the first "
                            "evaluation at or after this step even if the task is not found (0 = only once found; "
                            "beyond the article)")
    optim.add_argument("--restart_by", type=int, default=0,
                       help="start again from new weights (and the schedule over the steps left) at the first "
                            "evaluation at or after this step if none has reached 99%% (0 = never; beyond the article)")
    optim.add_argument("--grad_clip", type=float, default=0.0, help="max gradient norm (0 = no clipping)")
    optim.add_argument("--seed", type=int, default=42, help="seeds Python, torch and the data stream")
    optim.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda, mps, cpu")
    optim.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads, at most the cores (one is fastest for a model this small)")
    out = p.add_argument_group("logging and output")
    out.add_argument("--log_every", type=int, default=100, help="log loss and lr every N steps")
    out.add_argument("--eval_every", type=int, default=500, help="evaluate every N steps")
    out.add_argument("--save_every", type=int, default=1000, help="checkpoint every N steps (0 = final only)")
    out.add_argument("--save_dir", default=None,
                     help="folder for args.pt, args.json, model_step_N.pt, result.json (default: ./output/RUN_NAME)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace the checkpoints of an earlier run in save_dir (otherwise refuse)")
    out.add_argument("--run_name", default="baseline", help="the run's name in SwanLab and its folder under ./output")
    out.add_argument("--swanlab_mode", choices=["local", "offline", "online", "disabled"], default="local",
                     help="local/offline: logs only under --swanlab_dir; online: sync to the SwanLab cloud")
    out.add_argument("--swanlab_project", default="tutorial_with_rnn", help="SwanLab project name")
    out.add_argument("--swanlab_dir", default="./swanlog", help="where SwanLab writes its logs")
    return p


def parse_args(argv=None):
    """The flags, checked: a bad value or a run too big for this machine ends here in one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = vars(parser.parse_args([]))
    error = limits.config_error(args) or MACHINE.resource_error(vars(args), defaults)
    if error:
        parser.error(error)
    if args.save_dir is None:
        args.save_dir = runs.default_save_dir(args.run_name)
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if args.device in available and not available[args.device]():
        parser.error(f"--device {args.device}: no {args.device.upper()} device is available")
    return args


def main(argv=None):
    args = parse_args(argv)
    refusal = None if args.overwrite else runs.existing_run_error(args.save_dir)
    if refusal:  # checked before any work; train() checks again for callers that skip main()
        build_parser().error(refusal)
    try:
        result = train(args)
    except (CheckpointError, TrackingError) as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        sys.exit(f"error: {error.strerror or error}: {error.filename or args.save_dir}")
    if result["interrupted"]:
        sys.exit(130)


if __name__ == "__main__":
    main()
