"""Train an RNN to predict the sum of a digit sequence modulo 10.

A faithful, runnable reproduction of the training script from the two-part
"RNN archaeology" tutorial: random variable-length digit sequences, padded
batches packed with pack_padded_sequence, Embedding -> stacked nn.RNN -> Linear
on the last hidden state, Adam with linear warmup + cosine decay, SwanLab logs.

    python train_cls_rnn.py                                   # the article's baseline
    python train_cls_rnn.py --hidden_dim 32 --num_layers 3 --batch_size 64 \\
        --lr 0.005 --warmup_step 2000 --run_name sota_warmup   # its best recipe
    swanlab watch ./swanlog                                   # open the dashboard

Sections: 1. data  2. model  3. schedule  4. evaluation  5. checkpoints
          6. experiment tracking  7. training  8. command line
"""

import argparse
import json
import math
import os
import random
import re
import sys
import tempfile
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import IterableDataset

# The evaluation sets are drawn from their own fixed seeds, independent of --seed,
# so every run (any seed, any flags) is scored on exactly the same sequences.
EVAL_SEED = 1_000_003
EVAL_LONG_SEED = 2_000_003


# ----------------------------------------------------------------------------
# 1. Data
# ----------------------------------------------------------------------------


class SeqSumModDataset(IterableDataset):
    """Random digit sequences X with target Y = sum(X) mod (max_number + 1).

    Each sample: a length drawn uniformly from [min_seq_len, max_seq_len], that
    many digits drawn uniformly from [0, max_number]. Yields (digits, length,
    target). total_samples=None streams forever; otherwise every new iteration
    yields total_samples samples again. With a seed, every iteration yields the
    same samples (a fixed set); without one it draws from Python's global RNG.
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


def pad_batch(samples, pad_token):
    """Collate (digits, length, target) samples into padded tensors.

    The batch is sorted by decreasing length so that packing need not reorder
    it (the loss is a mean over the batch, so the order does not matter).
    """
    samples = sorted(samples, key=lambda sample: sample[1], reverse=True)
    digits, lengths, targets = zip(*samples)
    inputs = pad_sequence([torch.tensor(d) for d in digits], batch_first=True, padding_value=pad_token)
    return inputs, torch.tensor(lengths), torch.tensor(targets)


def random_batches(num_batches, batch_size, min_seq_len, max_seq_len, max_number, generator):
    """Draw num_batches padded batches from SeqSumModDataset's distribution, vectorised.

    Same per-sample law as the dataset (uniform length, i.i.d. uniform digits,
    target = sum mod max_number + 1) without a Python loop per digit; digits
    drawn for padded positions are discarded. Each batch is sorted by
    decreasing length. Shapes: (num_batches, batch_size[, max_seq_len]).
    """
    shape = (num_batches, batch_size)
    lengths = torch.randint(min_seq_len, max_seq_len + 1, shape, generator=generator)
    lengths = lengths.sort(dim=1, descending=True).values
    digits = torch.randint(0, max_number + 1, (*shape, max_seq_len), generator=generator)
    padding = torch.arange(max_seq_len) >= lengths[..., None]
    targets = digits.masked_fill(padding, 0).sum(dim=-1) % (max_number + 1)
    inputs = digits.masked_fill(padding, max_number + 1)
    return inputs, lengths, targets


def training_batches(batch_size, min_seq_len, max_seq_len, max_number, generator, chunk=500):
    """Endless (inputs, lengths, targets) batches, drawn chunk batches at a time."""
    while True:
        yield from zip(*random_batches(chunk, batch_size, min_seq_len, max_seq_len, max_number, generator))


def curriculum_batches(args, generator, chunk=500):
    """The training stream: lengths min..max_seq_len, and from --curriculum_step on (if set, beyond
    the article) lengths min..curriculum_max_len: learn the short cases first, then hold the sum longer."""
    short = training_batches(args.batch_size, args.min_seq_len, args.max_seq_len, args.max_number, generator, chunk)
    if not args.curriculum_max_len:
        yield from short
        return
    for _ in range(args.curriculum_step):
        yield next(short)
    yield from training_batches(args.batch_size, args.min_seq_len, args.curriculum_max_len, args.max_number,
                                generator, data_chunk(dict(vars(args), max_seq_len=args.curriculum_max_len)))


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

    def forward(self, x, seq_lengths, lengths_sorted=False):
        """x: (batch, time) token ids; seq_lengths: (batch,) true lengths (kept on the CPU)."""
        packed = pack_padded_sequence(
            self.embedding(x), seq_lengths.cpu(), batch_first=True, enforce_sorted=lengths_sorted
        )
        _, h_n = self.rnn(packed)  # h_n: (num_layers, batch, hidden), in the batch's own order
        if isinstance(h_n, tuple):  # an LSTM returns (h_n, c_n)
            h_n = h_n[0]
        return self.fc(h_n[-1])


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
# 5. Checkpoints: one folder per run (./output/<run_name> unless --save_dir),
#    holding args.pt, args.json, model_step_{N}.pt and, once it ends, result.json
# ----------------------------------------------------------------------------

CHECKPOINT_RE = re.compile(r"^model_step_(\d+)\.pt$")
RUN_FILES = ("args.pt", "args.json", "result.json")
DEFAULT_OUTPUT = "./output"


class CheckpointError(Exception):
    """A training folder or checkpoint that cannot be used; the message says why."""


def default_save_dir(run_name):
    return os.path.join(DEFAULT_OUTPUT, run_name)


def write_atomic(path, write, mode="wb"):
    """write(file) into a temporary file, then rename it to path: a crash never leaves half a file."""
    fd, tmp_path = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-",
                                    suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def save_atomic(obj, path):
    """torch.save, atomically."""
    write_atomic(path, lambda f: torch.save(obj, f))


def write_json_atomic(obj, path, **dump_options):
    """json.dump (one trailing newline), atomically."""
    write_atomic(path, lambda f: f.write(json.dumps(obj, **dump_options) + "\n"), mode="w")


def list_checkpoints(save_dir):
    """[(step, path)] of the model_step_N.pt files in save_dir, oldest first."""
    if not os.path.isdir(save_dir):
        return []
    found = []
    for name in os.listdir(save_dir):
        match = CHECKPOINT_RE.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(save_dir, name)))
    return sorted(found)


def run_files(save_dir):
    """The files a training run writes that are already in save_dir."""
    names = [name for name in RUN_FILES if os.path.exists(os.path.join(save_dir, name))]
    return names + [os.path.basename(path) for _, path in list_checkpoints(save_dir)]


def existing_run_error(save_dir):
    """Why a new run may not write into save_dir without --overwrite, or None."""
    existing = run_files(save_dir)
    if not existing:
        return None
    shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
    return (f"{save_dir} already holds a run ({shown}); pass --overwrite to replace it, "
            "or keep it and give this run another --run_name (or --save_dir)")


def prepare_save_dir(save_dir, overwrite):
    """Create save_dir; refuse to mix runs unless overwrite, which deletes the old run's files.

    Only the files a run writes (args.pt, args.json, result.json,
    model_step_*.pt) are deleted; anything else in the folder is left alone.
    """
    existing = run_files(save_dir)
    if existing and not overwrite:
        raise CheckpointError(existing_run_error(save_dir))
    os.makedirs(save_dir, exist_ok=True)
    for name in existing:
        os.remove(os.path.join(save_dir, name))
    if existing:
        print(f"--overwrite: removed {len(existing)} files of the previous run in {save_dir}")


def save_config(config, save_dir):
    """args.pt in the article's format (an argparse.Namespace of the flags), args.json for people and tools.

    The article's own predict_cls_rnn.py reads this args.pt unchanged; ours
    reads it with weights_only=True and argparse.Namespace as the only class
    allowed.
    """
    save_atomic(argparse.Namespace(**config), os.path.join(save_dir, "args.pt"))
    write_json_atomic(config, os.path.join(save_dir, "args.json"), indent=2)


def save_result(result, save_dir):
    """result.json: how the run ended. Its presence marks a run that finished (or was stopped)."""
    final = result["final"]
    write_json_atomic({
        "run_name": result["config"]["run_name"],
        "steps": result["steps"],
        "total_steps": result["config"]["total_steps"],
        "interrupted": result["interrupted"],
        "accuracy": final["accuracy"],
        "accuracy_long": final["accuracy_long"],
        "wall_time_s": round(result["wall_time_s"], 2),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, os.path.join(save_dir, "result.json"), indent=2)


def _load_plain(path, what):
    """torch.load with weights_only=True; argparse.Namespace is the one class allowed (args.pt)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found") from None
    except Exception as error:
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            raise CheckpointError(f"{path} holds objects other than plain data; refusing to load it") from None
        raise CheckpointError(f"{path} is not a readable {what} (corrupt or truncated?)") from None


MODEL_KEYS = ("max_number", "embed_dim", "hidden_dim", "num_layers", "min_seq_len", "max_seq_len")


def read_config(config_path):
    """The config of a run folder: args.pt as a Namespace (the article's and ours) or a plain dict
    (earlier versions of this project), checked before any model is built from it."""
    config = _load_plain(config_path, "config")
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    if not isinstance(config, dict) or not all(k in config for k in MODEL_KEYS):
        raise CheckpointError(f"{config_path} is not a config written by train_cls_rnn.py")
    problem = model_config_error(config)
    if problem:
        raise CheckpointError(f"{config_path} describes an impossible model: {problem}")
    return config


def model_config_error(config):
    """Why a loaded config cannot describe a model this machine can build, or None."""
    for key in MODEL_KEYS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_number" else 1):
            return f"{key} is {value!r}, not a positive whole number"
    if config.get("rnn_type", "rnn") not in RNN_TYPES:
        return f"rnn_type is {config.get('rnn_type')!r}"
    needed = model_bytes(config)
    if needed > memory_available():
        return f"it would need {gib(needed)} of memory, more than the {gib(memory_available())} available"
    return None


def load_trained_model(save_dir=DEFAULT_OUTPUT, checkpoint=None):
    """(model in eval mode, config, checkpoint path) of a training folder.

    Loads the newest model_step_N.pt of save_dir (or, when save_dir only holds
    run folders, of the run that finished last), or the checkpoint file named,
    with the args.pt that sits beside it. Nothing beyond plain data and
    argparse.Namespace is ever unpickled (weights_only=True).
    """
    if checkpoint is None:
        if not os.path.isdir(save_dir):
            raise CheckpointError(f"{save_dir} does not exist; train a model with train_cls_rnn.py first")
        found = list_checkpoints(save_dir)
        if not found:
            runs = find_runs(save_dir)
            if not runs:
                raise CheckpointError(f"no model_step_N.pt checkpoint in {save_dir} or its run folders; "
                                      "train one with train_cls_rnn.py")
            found = list_checkpoints(newest_run(runs)["path"])
        checkpoint = found[-1][1]
    elif not os.path.isfile(checkpoint):
        raise CheckpointError(f"{checkpoint} not found")
    config_path = os.path.join(os.path.dirname(checkpoint), "args.pt")
    if not os.path.isfile(config_path):
        raise CheckpointError(f"{config_path} not found: cannot tell which model {checkpoint} belongs to")
    config = read_config(config_path)
    state_dict = _load_plain(checkpoint, "checkpoint")
    try:
        model = build_model(config)
        model.load_state_dict(state_dict)
    except Exception:
        raise CheckpointError(
            f"{checkpoint} does not fit the model described by {config_path} "
            "(was the folder reused by a run with another configuration?)"
        ) from None
    return model.eval(), config, checkpoint


def describe_run_folder(path):
    """What a run folder holds, for choosing and listing runs; None if it holds no run.

    finished: it wrote result.json (ours), or its newest checkpoint is at
    total_steps (the article's script, or a run that crashed at the very end).
    """
    found = list_checkpoints(path)
    if not found or not os.path.isfile(os.path.join(path, "args.pt")):
        return None
    newest_step, newest = found[-1]
    info = {"path": path, "steps": newest_step, "accuracy": None, "finished": False,
            "time": os.path.getmtime(newest)}
    result_path = os.path.join(path, "result.json")
    try:
        with open(result_path) as f:
            result = json.load(f)
        info.update(finished=True, time=os.path.getmtime(result_path), accuracy=result.get("accuracy"),
                    interrupted=result.get("interrupted", False))
    except (OSError, ValueError):
        try:
            info["finished"] = newest_step >= read_config(os.path.join(path, "args.pt")).get("total_steps", 0)
        except CheckpointError:
            pass
    return info


def find_runs(root):
    """The runs in root itself and in its immediate subfolders, oldest first."""
    if not os.path.isdir(root):
        return []
    candidates = [root] + sorted(os.path.join(root, name) for name in os.listdir(root)
                                 if os.path.isdir(os.path.join(root, name)))
    runs = [info for path in candidates if (info := describe_run_folder(path))]
    return sorted(runs, key=lambda info: info["time"])


def newest_run(runs):
    """The run that finished last; if none has finished, the one written to last."""
    finished = [info for info in runs if info["finished"]]
    return (finished or runs)[-1]


# ----------------------------------------------------------------------------
# 6. Experiment tracking (SwanLab, imported only when used)
# ----------------------------------------------------------------------------


class TrackingError(Exception):
    """SwanLab could not start; the message says why and what to do."""


class Tracker:
    """A thin SwanLab wrapper; mode 'disabled' never imports SwanLab at all."""

    def __init__(self, config):
        self.swanlab = None
        if config["swanlab_mode"] == "disabled":
            return
        import swanlab

        try:
            swanlab.init(
                mode=config["swanlab_mode"],
                project=config["swanlab_project"],
                name=config["run_name"],
                log_dir=config["swanlab_dir"],
                config=dict(config),
            )
        except Exception as error:  # e.g. online mode without a login
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise TrackingError(
                f"SwanLab could not start in {config['swanlab_mode']} mode: {reason} "
                "(run `swanlab login` first, or use --swanlab_mode local)"
            ) from None
        self.swanlab = swanlab

    def active(self):
        # On Ctrl-C SwanLab's own signal handler closes the run (as "aborted") first.
        return self.swanlab is not None and self.swanlab.has_run()

    def log(self, metrics, step=None):
        if self.active():
            self.swanlab.log(metrics, step=step)

    def finish(self, state="success"):
        if self.active():
            self.swanlab.finish(state=state)


# ----------------------------------------------------------------------------
# 7. Training
# ----------------------------------------------------------------------------


def resolve_device(name):
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Progress:
    """A tqdm bar on a terminal, plain periodic lines otherwise, or silence."""

    def __init__(self, total_steps, style="auto"):
        if style == "auto":
            style = "bar" if sys.stderr.isatty() else "lines"
        self.style, self.total_steps = style, total_steps
        self.bar, self.postfix = None, {}
        self.last_step, self.last_time, self.steps_done = 0, time.perf_counter(), 0
        if style == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, unit="step", dynamic_ncols=True, mininterval=0.5)

    def step(self):
        if self.bar is not None:
            self.bar.update()
        elif self.style == "lines":
            self.steps_done += 1
            if time.perf_counter() - self.last_time > 30:  # slow steps: still say something every 30 s
                self.show(self.steps_done)

    def show(self, step, **metrics):
        if self.bar is not None:
            self.postfix.update(metrics)
            self.bar.set_postfix(self.postfix, refresh=False)
        elif self.style == "lines":
            now = time.perf_counter()
            rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
            self.last_step, self.last_time = step, now
            shown = " | ".join(f"{k} {v}" for k, v in metrics.items())
            print(f"step {step}/{self.total_steps} | {shown} | {rate:.0f} steps/s", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


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
    batches = curriculum_batches(args, torch.Generator().manual_seed(args.seed), chunk=data_chunk(config))

    long_lengths = (args.max_seq_len + 1, 2 * args.max_seq_len)
    build_seconds = eval_build_seconds(config)
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
        prepare_save_dir(args.save_dir, getattr(args, "overwrite", False))
        save_config(config, args.save_dir)
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

    def save_checkpoint(step):
        path = os.path.join(args.save_dir, f"model_step_{step}.pt")
        save_atomic(model.state_dict(), path)
        return path

    history, train_curve = [], []
    step, state, last_loss = 0, "success", float("nan")
    bar = Progress(args.total_steps, progress)
    start = time.perf_counter()
    model.train()
    try:
        while step < args.total_steps:
            inputs, lengths, targets = next(batches)
            logits = model(inputs.to(device), lengths, lengths_sorted=True)
            loss = criterion(logits, targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.step()

            shown = {}
            if step % args.log_every == 0:
                last_loss = loss.item()  # the only host sync of a training step
                lr = scheduler.get_last_lr()[0]
                train_curve.append({"step": step, "loss": last_loss, "lr": lr})
                tracker.log({"loss": last_loss, "current_lr": lr}, step=step)
                shown.update(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
            if step % args.eval_every == 0:
                record = run_eval(step)
                shown.update(acc=f"{record['accuracy']:.3f}", acc_long=f"{record['accuracy_long']:.3f}")
            if shown:
                bar.show(step, **shown)
            if args.save_every and step % args.save_every == 0:
                save_checkpoint(step)
    except KeyboardInterrupt:
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
        "history": history,
        "train_curve": train_curve,
        "final": history[-1],
        "checkpoint": os.path.join(args.save_dir, f"model_step_{step}.pt") if step else None,
        "model": model,
    }
    if step > 0:
        save_result(result, args.save_dir)
    if progress != "none":
        print_summary(result, long_lengths)
    return result


def print_summary(result, long_lengths):
    config, final = result["config"], result["final"]
    rate = result["steps"] / max(result["wall_time_s"], 1e-9)
    lines = [
        f"Trained {result['steps']} steps in {result['wall_time_s']:.1f} s ({rate:.0f} steps/s), "
        f"{result['num_params']} parameters.",
        f"  accuracy, lengths {config['min_seq_len']}-{config['max_seq_len']}: {final['accuracy']:.4f} "
        f"({config['eval_samples']} fixed evaluation sequences)",
        f"  accuracy, lengths {long_lengths[0]}-{long_lengths[1]}: {final['accuracy_long']:.4f} (longer than trained)",
    ]
    if result["checkpoint"]:
        lines.append(f"  checkpoints: {config['save_dir']} (newest: {result['checkpoint']})")
        lines.append(f"  try it:      python predict_cls_rnn.py --save_dir {config['save_dir']}")
    if config["swanlab_mode"] in ("local", "offline"):
        lines.append(f"  dashboard:   swanlab watch {config['swanlab_dir']}")
    print("\n".join(lines), flush=True)


# ----------------------------------------------------------------------------
# 8. Size limits: what this machine can hold, and build before the first step
# ----------------------------------------------------------------------------

PRESTEP_SECONDS = 60  # the longest wait allowed before the first training step
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
SIZE_FLAGS = ["min_seq_len", "max_seq_len", "max_number", "eval_samples", "embed_dim", "hidden_dim",
              "num_layers", "batch_size"]


def memory_available():
    """Bytes of memory this machine can give now (psutil comes with distributed; sysconf otherwise)."""
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def gib(n):
    return f"{n / 2**30:,.1f} GiB"


def parameter_count(config):
    classes, e, h, layers = config["max_number"] + 1, config["embed_dim"], config["hidden_dim"], config["num_layers"]
    gates = GATES[config.get("rnn_type", "rnn")]
    recurrent = gates * (h * e + h * h + 2 * h) + (layers - 1) * gates * (2 * h * h + 2 * h)
    return (classes + 1) * e + recurrent + h * classes + classes


def model_bytes(config):
    """float32 parameters, gradients and Adam's two moments."""
    return 16 * parameter_count(config)


def memory_needs(config):
    """Estimated peak bytes of each part of a run: {(what, its flags): bytes}."""
    b, t, e, h = config["batch_size"], config["max_seq_len"], config["embed_dim"], config["hidden_dim"]
    per_layer = h * (GATES[config.get("rnn_type", "rnn")] + 2)  # state, gates and output of one position
    per_position = e + config["num_layers"] * per_layer  # training keeps every layer for the backward pass
    n, lo = config["eval_samples"], config["min_seq_len"]
    digit_bytes = 8 + (28 if config["max_number"] > 256 else 0)  # a list slot (+ an int object beyond 256)
    eval_digits = n * ((lo + t) / 2 + (3 * t + 1) / 2)
    return {
        ("the model, its gradients and Adam's state", ("hidden_dim", "num_layers", "embed_dim", "max_number")):
            model_bytes(config),
        ("one training step's activations", ("batch_size", "max_seq_len", "hidden_dim", "num_layers", "embed_dim")):
            3 * 4 * b * t * per_position,
        ("the training data, drawn 500 batches at a time", ("batch_size", "max_seq_len")):
            32 * data_chunk(config) * b * t,
        ("the two evaluation sets", ("eval_samples", "max_seq_len", "min_seq_len", "embed_dim", "hidden_dim")):
            eval_digits * (digit_bytes + 16) + 2 * n * 600 + 2 * 4 * 4096 * 2 * t * (e + per_layer),
    }


def data_chunk(config, limit=None):
    """Batches drawn at once: 500 (what every normal run uses), fewer only when 500 would not fit in memory."""
    limit = memory_available() / 4 if limit is None else limit
    one_batch = 32 * config["batch_size"] * config["max_seq_len"]
    return 500 if 500 * one_batch <= limit else max(1, int(limit // one_batch))


_build_rate = {}


def eval_build_seconds(config):
    """Estimated time to build both evaluation sets (a Python loop per digit), calibrated on this machine."""
    n, lo, hi = config["eval_samples"], config["min_seq_len"], config["max_seq_len"]
    digits = n * ((lo + hi) / 2 + (3 * hi + 1) / 2)
    if digits < 200_000:  # far below a second anywhere: not worth measuring
        return 0.0
    if not _build_rate:
        start = time.perf_counter()
        make_eval_set(2000, 1, 1, config["max_number"], seed=0)
        _build_rate["per_sample"] = (time.perf_counter() - start) / 2000
        start = time.perf_counter()
        make_eval_set(100, 200, 200, config["max_number"], seed=0)
        _build_rate["per_digit"] = max((time.perf_counter() - start) / 100 - _build_rate["per_sample"], 1e-9) / 200
    return 2 * n * _build_rate["per_sample"] + digits * _build_rate["per_digit"]


def first_step_seconds(config):
    """Estimated time to build the model and take one training step, calibrated on this machine.

    Only deep, long or wide configurations are measured; the article's take milliseconds.
    """
    layers, t, b, h = config["num_layers"], config["max_seq_len"], config["batch_size"], config["hidden_dim"]
    if layers * t < 2_000 and b * t * h * layers < 10**8:
        return 0.0
    cal_t, cal_b, cal_layers = min(t, 50), min(b, 256), 4
    cal = dict(config, num_layers=cal_layers, max_seq_len=cal_t, batch_size=cal_b)
    start = time.perf_counter()
    model = build_model(cal)
    built = time.perf_counter() - start
    inputs = torch.randint(0, config["max_number"] + 1, (cal_b, cal_t))
    lengths = torch.full((cal_b,), cal_t)
    start = time.perf_counter()
    model(inputs, lengths, lengths_sorted=True).sum().backward()
    stepped = time.perf_counter() - start
    return (built + stepped * (t / cal_t) * max(1.0, b / cal_b)) * layers / cal_layers


def resource_problem(config):
    """(what, its flags, why) if a run of this config would not fit or would wait minutes before its first step."""
    if config["threads"] > (os.cpu_count() or 1):
        return "--threads", ("threads",), f"is more than the {os.cpu_count()} CPU cores of this machine"
    needs = memory_needs(config)
    available = memory_available()
    if sum(needs.values()) > 0.9 * available:
        (what, flags), largest = max(needs.items(), key=lambda item: item[1])
        return what, flags, f"would need about {gib(largest)} of memory; this machine has {gib(available)} available"
    seconds = eval_build_seconds(config)
    if seconds > PRESTEP_SECONDS:
        return ("building the two evaluation sets", ("eval_samples", "max_seq_len", "min_seq_len"),
                f"would take about {seconds / 60:.0f} min on this machine before the first step "
                f"(the limit is {PRESTEP_SECONDS} s)")
    seconds = first_step_seconds(config)
    if seconds > PRESTEP_SECONDS:
        return ("building the model and taking one step", ("num_layers", "max_seq_len", "batch_size", "hidden_dim"),
                f"would take about {seconds / 60:.0f} min on this machine (the limit is {PRESTEP_SECONDS} s)")
    return None


def resource_error(args):
    """One sentence naming the flag that makes a run too big for this machine, and its limit; or None."""
    config = vars(args)
    problem = resource_problem(config)
    if problem is None:
        return None
    what, flags, why = problem
    defaults = vars(build_parser().parse_args([]))
    flag = max(flags, key=lambda f: config[f] / max(defaults[f], 1))  # the one furthest above its default
    limit = largest_allowed(config, flag)
    if flag == "threads":
        return f"--threads {config['threads']} {why}"
    allowed = f"; with the other flags as given, --{flag} can be at most {limit:,}" if limit else ""
    return f"--{flag} {config[flag]:,}: {what} {why}{allowed}"


def largest_allowed(config, flag):
    """The largest value of one size flag that passes resource_problem(), the others unchanged (0 if none)."""
    low, high = 0, config[flag]
    while low < high:
        middle = (low + high + 1) // 2
        trial = dict(config, **{flag: middle})
        if flag == "max_seq_len":
            trial["min_seq_len"] = min(trial["min_seq_len"], middle)
        if middle >= 1 and resource_problem(trial) is None:
            low = middle
        else:
            high = middle - 1
    return low


def limits_epilog():
    return (f"Size limits on this machine ({gib(memory_available())} of memory available now, {os.cpu_count()} cores): "
            f"before any work, a run is refused if its model, Adam state, activations, training data and evaluation "
            f"sets would not fit in memory, if its evaluation sets would take over {PRESTEP_SECONDS} s to build, or "
            f"if --threads exceeds the cores; the message names the flag and its largest possible value.")


# ----------------------------------------------------------------------------
# 9. Command line
# ----------------------------------------------------------------------------


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad flags get one line (not the whole usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser():
    p = OneLineErrorParser(
        description="Train an RNN to predict the sum of a digit sequence modulo max_number + 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=limits_epilog(),
    )
    data = p.add_argument_group("data")
    data.add_argument("--min_seq_len", type=int, default=2, help="shortest training sequence")
    data.add_argument("--max_seq_len", type=int, default=5, help="longest training sequence (size limit below)")
    data.add_argument("--max_number", type=int, default=9,
                      help="digits are 0..max_number; targets mod max_number+1 (size limit below)")
    data.add_argument("--curriculum_max_len", type=int, default=0,
                      help="from --curriculum_step on, train on lengths min_seq_len..this (0 = off; beyond the article)")
    data.add_argument("--curriculum_step", type=int, default=0, help="the step at which longer sequences begin")
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
    optim.add_argument("--grad_clip", type=float, default=0.0, help="max gradient norm (0 = no clipping)")
    optim.add_argument("--seed", type=int, default=42, help="seeds Python, torch and the data stream")
    optim.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                       help="auto = cuda, else mps, else cpu")
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
    out.add_argument("--run_name", default="baseline",
                     help="experiment name in SwanLab, and the run's folder under ./output")
    out.add_argument("--swanlab_mode", choices=["local", "offline", "online", "disabled"], default="local",
                     help="local/offline: logs only under --swanlab_dir; online: sync to the SwanLab cloud")
    out.add_argument("--swanlab_project", default="tutorial_with_rnn", help="SwanLab project name")
    out.add_argument("--swanlab_dir", default="./swanlog", help="where SwanLab writes its logs")
    return p


def config_error(args):
    """The first problem with a set of flags, as one sentence, or None."""
    positive = ["total_steps", "batch_size", "embed_dim", "hidden_dim", "num_layers", "lr",
                "log_every", "eval_every", "eval_samples", "threads"]
    for name in positive:
        value = getattr(args, name)
        if not (value > 0 and math.isfinite(value)):
            return f"--{name} must be positive (got {value})"
    for name in ["warmup_step", "min_lr", "save_every", "grad_clip"]:
        value = getattr(args, name)
        if not (value >= 0 and math.isfinite(value)):
            return f"--{name} must be zero or positive (got {value})"
    if args.min_seq_len < 1:
        return f"--min_seq_len must be at least 1 (got {args.min_seq_len})"
    if args.min_seq_len > args.max_seq_len:
        return f"--min_seq_len ({args.min_seq_len}) must not exceed --max_seq_len ({args.max_seq_len})"
    if args.max_number < 1:
        return f"--max_number must be at least 1 (got {args.max_number})"
    if args.curriculum_max_len and not args.max_seq_len < args.curriculum_max_len:
        return f"--curriculum_max_len ({args.curriculum_max_len}) must exceed --max_seq_len ({args.max_seq_len})"
    if args.curriculum_max_len and not 0 <= args.curriculum_step < args.total_steps:
        return f"--curriculum_step ({args.curriculum_step}) must be in 0..total_steps-1 ({args.total_steps - 1})"
    if args.warmup_step >= args.total_steps:
        return f"--warmup_step ({args.warmup_step}) must be smaller than --total_steps ({args.total_steps})"
    if not args.run_name.strip():
        return "--run_name must not be empty"
    if args.save_dir is None and (args.run_name in (".", "..") or any(c in args.run_name for c in "/\\\0")):
        return f"--run_name {args.run_name!r} names the run's folder under ./output: no / or \\ (or give --save_dir)"
    return None


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    error = config_error(args) or resource_error(args)
    if error:
        parser.error(error)
    if args.save_dir is None:
        args.save_dir = default_save_dir(args.run_name)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.device == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps: no MPS device is available")
    return args


def main(argv=None):
    args = parse_args(argv)
    refusal = None if args.overwrite else existing_run_error(args.save_dir)
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
