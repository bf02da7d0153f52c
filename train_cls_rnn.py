"""Train an RNN to predict the sum of a digit sequence modulo 10.

A faithful, runnable reproduction of the training script of the two-part "RNN archaeology" tutorial:
random variable-length digit sequences, padded batches packed with pack_padded_sequence, Embedding ->
stacked nn.RNN -> Linear on the last hidden state, Adam with linear warmup + cosine decay, SwanLab logs.

    python train_cls_rnn.py                                   # the article's baseline
    python train_cls_rnn.py --hidden_dim 32 --num_layers 3 --batch_size 64 \\
        --lr 0.005 --warmup_step 2000 --run_name sota_warmup   # its best recipe
    swanlab watch ./swanlog                                   # open the dashboard

Sections, in the article's order: 1. data  2. model  3. schedule  4. evaluation  5. training  6. command
line. What is not the tutorial lives in rnn_tutorial/: run folders (runs.py), flag checks and size limits
(limits.py), SwanLab (tracking.py), progress (console.py), the ablation's variants (variants.py), the recipes
that make a network right on every sequence (hardening.py) and the model's forms they need (model_forms.py).
"""

import argparse
import os
import random
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import IterableDataset

from rnn_tutorial import hardening, limits, runs, tracking, variants
from rnn_tutorial.model_forms import ModelForms
from rnn_tutorial.console import OneLineErrorParser, Progress, print_summary
from rnn_tutorial.runs import CheckpointError
from rnn_tutorial.tracking import TrackingError

# The evaluation sets are drawn from their own fixed seeds, independent of --seed,
# so every run (any seed, any flags) is scored on exactly the same sequences.
EVAL_SEED = 1_000_003
EVAL_LONG_SEED = 2_000_003


# 1. Data --------------------------------------------------------------------


class SeqSumModDataset(IterableDataset):
    """Random digit sequences X with target Y = sum(X) mod (max_number + 1), as (digits, length, target).

    A length uniform in [min_seq_len, max_seq_len], then that many digits uniform in [0, max_number].
    total_samples=None streams forever. A seed gives the same samples every time; without, Python's global RNG.
    """

    def __init__(self, total_samples=None, min_seq_len=2, max_seq_len=5, max_number=9, seed=None):
        self.total_samples, self.seed = total_samples, seed
        self.min_seq_len, self.max_seq_len, self.max_number = min_seq_len, max_seq_len, max_number

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
    """Collate (digits, length, target) samples into padded tensors, sorted by decreasing length so that packing
    need not reorder them (the loss is a mean over the batch: the order does not matter)."""
    samples = sorted(samples, key=lambda sample: sample[1], reverse=True)
    digits, lengths, targets = zip(*samples)
    inputs = pad_sequence([torch.tensor(d) for d in digits], batch_first=True, padding_value=pad_token)
    return inputs, torch.tensor(lengths), torch.tensor(targets)


def random_batches(num_batches, batch_size, min_seq_len, max_seq_len, max_number, generator, digit_skew=0.0):
    """num_batches padded batches of SeqSumModDataset's law, drawn at once without a loop per digit: digits drawn
    for padded places are discarded, each batch is sorted by decreasing length. digit_skew > 0: variants.py."""
    shape = (num_batches, batch_size)
    lengths = torch.randint(min_seq_len, max_seq_len + 1, shape, generator=generator)
    lengths = lengths.sort(dim=1, descending=True).values
    digits = torch.randint(0, max_number + 1, (*shape, max_seq_len), generator=generator)
    if digit_skew > 0:  # with 0, not one extra number is drawn: the article's stream, bit for bit
        digits = variants.skew_digits(digits, digit_skew, max_number, generator)
    padding = torch.arange(max_seq_len) >= lengths[..., None]
    targets = digits.masked_fill(padding, 0).sum(dim=-1) % (max_number + 1)
    inputs = digits.masked_fill(padding, max_number + 1)
    return inputs, lengths, targets


def training_batches(batch_size, min_seq_len, max_seq_len, max_number, generator, chunk=500, digit_skew=0.0):
    """Endless (inputs, lengths, targets) batches, drawn chunk batches at a time."""
    while True:
        yield from zip(*random_batches(chunk, batch_size, min_seq_len, max_seq_len, max_number, generator,
                                       digit_skew))


def make_eval_set(num_samples, min_seq_len, max_seq_len, max_number, seed):
    """A fixed evaluation set: the same seed always gives the same padded tensors."""
    dataset = SeqSumModDataset(num_samples, min_seq_len, max_seq_len, max_number, seed=seed)
    return pad_batch(list(dataset), pad_token=max_number + 1)


# 2. Model -------------------------------------------------------------------

RNN_TYPES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RnnClsNet(ModelForms, nn.Module):
    """Embedding -> stacked RNN over the packed batch -> Linear on h_n of the last layer.

    forward() is the article's model; the other ways to run it (after every prefix, from a given state, and
    ModelForms') serve the recipes and the audit, which never reach into the cell themselves."""

    def __init__(self, vocab_size=10, embed_dim=10, hidden_dim=16, num_layers=1, cls_num=10, rnn_type="rnn"):
        super().__init__()
        # One extra row for the padding token (index vocab_size); it stays zero.
        self.embedding = nn.Embedding(vocab_size + 1, embed_dim, padding_idx=vocab_size)
        self.rnn = RNN_TYPES[rnn_type](embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, cls_num)
        self.rnn_type = rnn_type

    def final_hidden(self, x, seq_lengths, lengths_sorted=False):
        """The last layer's hidden state after each sequence's own last digit: (batch, hidden)."""
        packed = pack_padded_sequence(self.embedding(x), seq_lengths.cpu(), batch_first=True,
                                      enforce_sorted=lengths_sorted)
        _, state = self.rnn(packed)  # h_n: (num_layers, batch, hidden), in the batch's own order
        return self.state_parts(state)[0][-1]

    def forward(self, x, seq_lengths, lengths_sorted=False):
        """x: (batch, time) token ids; seq_lengths: (batch,) true lengths (kept on the CPU)."""
        return self.fc(self.final_hidden(x, seq_lengths, lengths_sorted))

    def prefix_logits(self, x, seq_lengths=None, lengths_sorted=False):
        """The logits after every digit, (batch, time, classes): of equal-length sequences in one pass, or,
        with seq_lengths, of padded ones packed (padded places then read a zero state)."""
        if seq_lengths is None:
            return self.fc(self.run(self.embedding(x))[0])
        packed = pack_padded_sequence(self.embedding(x), seq_lengths.cpu(), batch_first=True,
                                      enforce_sorted=lengths_sorted)
        outputs, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
        return self.fc(outputs)

    def run(self, embedded, state=None):
        """The stacked cell over embedded digits (batch, time, embed_dim) from a state (None: zeros): the top
        layer's state after every digit (batch, time, hidden), and the whole state after the last."""
        return self.rnn(embedded, state)

    def step(self, state, digits):
        """One digit for each sequence of a batch from its state (None: the initial zero state): (new state,
        logits)."""
        outputs, state = self.run(self.embedding(digits)[:, None, :], state)
        return state, self.fc(outputs[:, 0])

    def state_parts(self, state):
        """The state as a tuple of (num_layers, batch, hidden) tensors: (h, c) for an LSTM, (h,) otherwise."""
        return state if self.rnn_type == "lstm" else (state,)

    def state_from_parts(self, parts):
        return tuple(parts) if self.rnn_type == "lstm" else parts[0]


def build_model(config):
    """The model a config describes: max_number + 1 input tokens and as many classes."""
    classes = config["max_number"] + 1
    return RnnClsNet(vocab_size=classes, embed_dim=config["embed_dim"], hidden_dim=config["hidden_dim"],
                     num_layers=config["num_layers"], cls_num=classes, rnn_type=config.get("rnn_type", "rnn"))


# 3. Learning-rate schedule --------------------------------------------------


def build_scheduler(optimizer, total_steps, warmup_step, min_lr, cosine_span="total"):
    """Linear warmup from 1% of lr over warmup_step steps, then cosine decay (warmup_step=0: the cosine alone).

    As in the article (cosine_span="total"), the cosine's period is total_steps, not the steps left after the
    warmup, so a long warmup ends training above min_lr; "after_warmup" (variants.py) ends exactly at min_lr.
    """
    period = total_steps if cosine_span == "total" else total_steps - warmup_step
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=period, eta_min=min_lr)
    if warmup_step == 0:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup_step)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_step])


# 4. Evaluation --------------------------------------------------------------


def proper_divisors(modulus):
    """2 and 5 for 10: the sum mod 10 is the pair (sum mod 2, sum mod 5)."""
    return [d for d in range(2, modulus) if modulus % d == 0]


@torch.inference_mode()
def evaluate(model, eval_set, device, chunk_size=4096, divisors=()):
    """Mean cross-entropy and accuracy of the model on a padded, length-sorted set; with divisors, also how often
    the answer is right modulo each of them (accuracy_mod2, accuracy_mod5): which half of the task it knows."""
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
    residues = {f"accuracy_mod{d}": c / n for d, c in residue_correct.items()}
    return {"loss": loss_sum / n, "accuracy": correct / n, **residues}


# 5. Training ----------------------------------------------------------------


def make_eval_sets(args, progress):
    """The two fixed evaluation sets: the trained lengths, and lengths max+1..2*max (extrapolation)."""
    if progress != "none":
        MACHINE.announce_slow_eval_build(vars(args))
    return {
        "accuracy": make_eval_set(args.eval_samples, args.min_seq_len, args.max_seq_len, args.max_number, EVAL_SEED),
        "accuracy_long": make_eval_set(args.eval_samples, args.max_seq_len + 1, 2 * args.max_seq_len, args.max_number,
                                       EVAL_LONG_SEED),
    }


def new_model(config, device):
    """A fresh model as config describes, its recurrent weights as --init says (variants.py)."""
    return variants.initialise_recurrent_weights(build_model(config), config["init"]).to(device)


def start_again(model, optimizer, config, steps_left):
    """--restart_by (beyond the article): new weights, a fresh optimizer and the schedule again over the steps
    left; returns the new scheduler."""
    model.load_state_dict(new_model(config, "cpu").state_dict())
    optimizer.state.clear()
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"]  # the warmup scales the lr it finds: give it the peak again
    return build_scheduler(optimizer, steps_left, config["warmup_step"], config["min_lr"], config["cosine_span"])


def train(args, progress="auto"):
    """Train one model as args describe; returns a dict of results (and the model).

    args: an argparse.Namespace (or anything with the flags of build_parser()).
    progress: 'auto', 'bar', 'lines' or 'none'.
    The recipes beyond the article reach the loop through one object (hardening.Recipe), at four calls.
    """
    config = dict(vars(args))
    config.pop("overwrite", None)  # how the folder was prepared, not what was trained
    device = limits.resolve_device(args.device)
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    batches = variants.curriculum_batches(args, torch.Generator().manual_seed(args.seed), training_batches)
    eval_sets = make_eval_sets(args, progress)

    model = new_model(config, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=device.type in ("cpu", "cuda"))
    scheduler = build_scheduler(optimizer, args.total_steps, args.warmup_step, args.min_lr, args.cosine_span)
    criterion = nn.CrossEntropyLoss()
    num_params = sum(p.numel() for p in model.parameters())
    recipe = hardening.Recipe(args)
    tracker = tracking.open_run(config, args.save_dir, getattr(args, "overwrite", False))
    tracker.log({"Model Params": num_params})

    def run_eval(step):
        scores = evaluate(model, eval_sets["accuracy"], device, divisors=proper_divisors(args.max_number + 1))
        record = {"step": step, "accuracy": scores.pop("accuracy"), "eval_loss": scores.pop("loss")}
        record["accuracy_long"] = evaluate(model, eval_sets["accuracy_long"], device)["accuracy"]
        record.update(scores)  # accuracy_mod2, accuracy_mod5
        history.append(record)
        tracker.log({k: v for k, v in record.items() if k != "step"}, step=step)
        return record

    def save_checkpoint(step):
        runs.save_atomic(model.state_dict(), os.path.join(args.save_dir, f"model_step_{step}.pt"))

    history, train_curve = [], []
    step, state, last_loss = 0, "success", float("nan")
    bar = Progress(args.total_steps, "step", style=progress)
    start = time.perf_counter()
    model.train()
    try:
        while step < args.total_steps:
            inputs, lengths, targets = next(batches)
            inputs, lengths, targets = recipe.batch(inputs.to(device), lengths, targets.to(device))
            if recipe.changes_loss:  # beyond the article: noise, penalties, a loss after every digit
                loss, cross_entropy = recipe.loss(model, criterion, inputs, lengths, targets)
            else:
                loss = cross_entropy = criterion(model(inputs, lengths, lengths_sorted=True), targets)
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
                extra = recipe.logged(loss, cross_entropy)
                train_curve.append({"step": step, "loss": last_loss, "lr": lr, **extra})
                tracker.log({"loss": last_loss, "current_lr": lr, **extra}, step=step)
                shown.update(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
            if step % args.eval_every == 0:
                record = run_eval(step)
                if recipe.after_eval(step, record["accuracy"], model):
                    bar.note(f"no evaluation at 99% by step {step}: starting again from new weights")
                    scheduler = start_again(model, optimizer, config, args.total_steps - step)
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

    result = {"config": config, "steps": step, "interrupted": state == "aborted", "wall_time_s": wall_time, "device": device,
              "num_params": num_params, "final_loss": last_loss, "restarted_at": recipe.restarted_at,
              "history": history, "train_curve": train_curve, "final": history[-1],
              "checkpoint": os.path.join(args.save_dir, f"model_step_{step}.pt") if step else None, "model": model}
    if step > 0:
        runs.save_result(result, args.save_dir)
    if progress != "none":
        print_summary(result)
    return result


# 6. Command line ------------------------------------------------------------

MACHINE = limits.Machine(build_model, make_eval_set)  # what this machine can train (size flags are checked)


def build_parser():
    p = OneLineErrorParser(description="Train an RNN to predict the sum of a digit sequence modulo max_number + 1.",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=limits.epilog())
    data = p.add_argument_group("data")
    data.add_argument("--min_seq_len", type=int, default=2, help="shortest training sequence")
    data.add_argument("--max_seq_len", type=int, default=5, help="longest training sequence (size limit below)")
    data.add_argument("--max_number", type=int, default=9,
                      help="digits are 0..max_number; targets mod max_number+1 (size limit below)")
    data.add_argument("--eval_samples", type=int, default=2000,
                      help="size of each fixed evaluation set (size limit below)")
    model = p.add_argument_group("model")
    model.add_argument("--embed_dim", type=int, default=10, help="embedding size (size limit below)")
    model.add_argument("--hidden_dim", type=int, default=16, help="RNN hidden size (size limit below)")
    model.add_argument("--num_layers", type=int, default=1, help="stacked RNN layers (size limit below)")
    optim = p.add_argument_group("training")
    optim.add_argument("--total_steps", type=int, default=20000, help="optimizer steps")
    optim.add_argument("--batch_size", type=int, default=16, help="sequences per step (size limit below)")
    optim.add_argument("--lr", type=float, default=0.001, help="peak learning rate (Adam)")
    optim.add_argument("--min_lr", type=float, default=0.0001, help="floor of the cosine decay")
    optim.add_argument("--warmup_step", type=int, default=100, help="linear warmup steps from 1%% of lr (0 = none)")
    optim.add_argument("--seed", type=int, default=42, help="seeds Python, torch and the data stream")
    out = p.add_argument_group("logging and output")
    out.add_argument("--log_every", type=int, default=100, help="log loss and lr every N steps")
    out.add_argument("--eval_every", type=int, default=500, help="evaluate every N steps")
    out.add_argument("--save_every", type=int, default=1000, help="checkpoint every N steps (0 = final only)")
    out.add_argument("--save_dir", default=None,
                     help="folder for args.pt, args.json, model_step_N.pt, result.json (default: ./output/RUN_NAME)")
    out.add_argument("--overwrite", action="store_true", help="replace an earlier run's checkpoints in save_dir")
    out.add_argument("--run_name", default="baseline", help="the run's name in SwanLab and its folder under ./output")
    limits.add_flags(p)
    variants.add_flags(p, cell_types=sorted(RNN_TYPES))
    tracking.add_flags(p)
    hardening.add_flags(p)
    return p


def parse_args(argv=None):
    """The flags, checked (limits.py): a bad value, a run too big for this machine or a device it lacks ends here
    in one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    error = limits.config_error(args) or MACHINE.resource_error(vars(args), vars(parser.parse_args([])))
    if error:
        parser.error(error)
    args.save_dir = args.save_dir or runs.default_save_dir(args.run_name)
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
