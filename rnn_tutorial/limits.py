"""What a run may ask for: the flags' own rules, and the memory and time this machine allows.

A bad flag is refused in one sentence before any work: sizes must be
positive, lengths ordered, and a run must fit in this machine's memory and
start its first step within PRESTEP_SECONDS; the message names the flag and
its largest possible value. The estimates use the model's own code, passed in
(Machine(build_model, make_eval_set)), so this module never imports the
training script. Not in train_cls_rnn.py because the article checks nothing:
none of this is needed to follow the tutorial. The machine's own flags
(--device, --threads) are registered here (add_flags), and resolve_device
picks the device for --device auto.
"""

import math
import os
import time

import torch

PRESTEP_SECONDS = 60  # the longest wait allowed before the first training step
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per layer of each cell type
MODEL_KEYS = ("max_number", "embed_dim", "hidden_dim", "num_layers", "min_seq_len", "max_seq_len")


# ----------------------------------------------------------------------------
# The flags' own rules
# ----------------------------------------------------------------------------


def config_error(args):
    """The first problem with a set of flags, as one sentence, or None."""
    positive = ["total_steps", "batch_size", "embed_dim", "hidden_dim", "num_layers", "lr",
                "log_every", "eval_every", "eval_samples", "threads"]
    for name in positive:
        value = getattr(args, name)
        if not (value > 0 and math.isfinite(value)):
            return f"--{name} must be positive (got {value})"
    for name in ["warmup_step", "min_lr", "save_every", "grad_clip", "state_noise", "stretch_penalty",
                 "forget_penalty"]:
        value = getattr(args, name)
        if not (value >= 0 and math.isfinite(value)):
            return f"--{name} must be zero or positive (got {value})"
    for name in ["digit_skew", "hard_share"]:
        if not 0 <= getattr(args, name) <= 1:  # also refuses nan
            return f"--{name} must be between 0 and 1 (got {getattr(args, name)})"
    if args.min_seq_len < 1:
        return f"--min_seq_len must be at least 1 (got {args.min_seq_len})"
    if args.min_seq_len > args.max_seq_len:
        return f"--min_seq_len ({args.min_seq_len}) must not exceed --max_seq_len ({args.max_seq_len})"
    if args.max_number < 1:
        return f"--max_number must be at least 1 (got {args.max_number})"
    if args.curriculum_max_len and not args.max_seq_len < args.curriculum_max_len:
        return f"--curriculum_max_len ({args.curriculum_max_len}) must exceed --max_seq_len ({args.max_seq_len})"
    if args.hard_max_len != 0 and not args.min_seq_len <= args.hard_max_len <= 1000:  # min_seq_len >= 1
        return f"--hard_max_len must be 0 or between --min_seq_len and 1000 (got {args.hard_max_len})"
    for name in ("harden_by", "restart_by"):
        if not 0 <= getattr(args, name) <= args.total_steps:
            return f"--{name} must be 0 or a step up to --total_steps (got {getattr(args, name)})"
    if args.curriculum_max_len and not 0 <= args.curriculum_step < args.total_steps:
        return f"--curriculum_step ({args.curriculum_step}) must be in 0..total_steps-1 ({args.total_steps - 1})"
    if args.warmup_step >= args.total_steps:
        return f"--warmup_step ({args.warmup_step}) must be smaller than --total_steps ({args.total_steps})"
    if args.stretch_penalty and (args.rnn_type != "rnn" or args.num_layers != 1):
        return "--stretch_penalty is written for one layer of the plain cell (--rnn_type rnn --num_layers 1)"
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if args.device in available and not available[args.device]():
        return f"--device {args.device}: no {args.device.upper()} device is available"
    if not args.run_name.strip():
        return "--run_name must not be empty"
    if args.save_dir is None and (args.run_name in (".", "..") or any(c in args.run_name for c in "/\\\0")):
        return f"--run_name {args.run_name!r} names the run's folder under ./output: no / or \\ (or give --save_dir)"
    return None


def add_flags(parser):
    group = parser.add_argument_group("this machine")
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto", help="auto: cuda, mps, cpu")
    group.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads, at most the cores (one is fastest for a model this small)")


def resolve_device(name):
    """auto: CUDA, else Apple's MPS, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    return torch.device(name)


def model_config_error(config):
    """Why a loaded config cannot describe a model this machine can build, or None."""
    for key in MODEL_KEYS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_number" else 1):
            return f"{key} is {value!r}, not a positive whole number"
    if config.get("rnn_type", "rnn") not in GATES:
        return f"rnn_type is {config.get('rnn_type')!r}"
    needed = model_bytes(config)
    if needed > memory_available():
        return f"it would need {gib(needed)} of memory, more than the {gib(memory_available())} available"
    return None


# ----------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------


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
    """Parameters of the model a config describes (RnnClsNet: embedding, stacked cell, linear read-out)."""
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


def epilog():
    return (f"Size limits on this machine ({gib(memory_available())} of memory available now, {os.cpu_count()} cores): "
            f"before any work, a run is refused if its model, Adam state, activations, training data and evaluation "
            f"sets would not fit in memory, if its evaluation sets would take over {PRESTEP_SECONDS} s to build, or "
            f"if --threads exceeds the cores; the message names the flag and its largest possible value.")


# ----------------------------------------------------------------------------
# Time before the first step, and the verdict
# ----------------------------------------------------------------------------


class Machine:
    """This machine's limits for the model that build_model(config) makes and make_eval_set(...) scores."""

    def __init__(self, build_model, make_eval_set):
        self.build_model, self.make_eval_set = build_model, make_eval_set
        self.build_rate = {}

    def eval_build_seconds(self, config):
        """Estimated time to build both evaluation sets (a Python loop per digit), calibrated on this machine."""
        n, lo, hi = config["eval_samples"], config["min_seq_len"], config["max_seq_len"]
        digits = n * ((lo + hi) / 2 + (3 * hi + 1) / 2)
        if digits < 200_000:  # far below a second anywhere: not worth measuring
            return 0.0
        if not self.build_rate:
            start = time.perf_counter()
            self.make_eval_set(2000, 1, 1, config["max_number"], seed=0)
            self.build_rate["per_sample"] = (time.perf_counter() - start) / 2000
            start = time.perf_counter()
            self.make_eval_set(100, 200, 200, config["max_number"], seed=0)
            per_sequence = (time.perf_counter() - start) / 100
            self.build_rate["per_digit"] = max(per_sequence - self.build_rate["per_sample"], 1e-9) / 200
        return 2 * n * self.build_rate["per_sample"] + digits * self.build_rate["per_digit"]

    def announce_slow_eval_build(self, config):
        """Say so before building evaluation sets that take more than a few seconds."""
        seconds = self.eval_build_seconds(config)
        if seconds > 3:
            print(f"building the two evaluation sets of {config['eval_samples']:,} sequences "
                  f"(about {seconds:.0f} s) ...", flush=True)

    def first_step_seconds(self, config):
        """Estimated time to build the model and take one training step, calibrated on this machine.

        Only deep, long or wide configurations are measured; the article's take milliseconds.
        """
        import torch

        layers, t, b, h = config["num_layers"], config["max_seq_len"], config["batch_size"], config["hidden_dim"]
        if layers * t < 2_000 and b * t * h * layers < 10**8:
            return 0.0
        cal_t, cal_b, cal_layers = min(t, 50), min(b, 256), 4
        cal = dict(config, num_layers=cal_layers, max_seq_len=cal_t, batch_size=cal_b)
        start = time.perf_counter()
        model = self.build_model(cal)
        built = time.perf_counter() - start
        inputs = torch.randint(0, config["max_number"] + 1, (cal_b, cal_t))
        lengths = torch.full((cal_b,), cal_t)
        start = time.perf_counter()
        model(inputs, lengths, lengths_sorted=True).sum().backward()
        stepped = time.perf_counter() - start
        return (built + stepped * (t / cal_t) * max(1.0, b / cal_b)) * layers / cal_layers

    def resource_problem(self, config):
        """(what, its flags, why) if a run of this config would not fit or would wait minutes before its first step."""
        if config["threads"] > (os.cpu_count() or 1):
            return "--threads", ("threads",), f"is more than the {os.cpu_count()} CPU cores of this machine"
        needs = memory_needs(config)
        available = memory_available()
        if sum(needs.values()) > 0.9 * available:
            (what, flags), largest = max(needs.items(), key=lambda item: item[1])
            return what, flags, f"would need about {gib(largest)} of memory; this machine has {gib(available)} available"
        seconds = self.eval_build_seconds(config)
        if seconds > PRESTEP_SECONDS:
            return ("building the two evaluation sets", ("eval_samples", "max_seq_len", "min_seq_len"),
                    f"would take about {seconds / 60:.0f} min on this machine before the first step "
                    f"(the limit is {PRESTEP_SECONDS} s)")
        seconds = self.first_step_seconds(config)
        if seconds > PRESTEP_SECONDS:
            return ("building the model and taking one step", ("num_layers", "max_seq_len", "batch_size", "hidden_dim"),
                    f"would take about {seconds / 60:.0f} min on this machine (the limit is {PRESTEP_SECONDS} s)")
        return None

    def resource_error(self, config, defaults):
        """One sentence naming the flag that makes a run too big for this machine, and its limit; or None."""
        problem = self.resource_problem(config)
        if problem is None:
            return None
        what, flags, why = problem
        flag = max(flags, key=lambda f: config[f] / max(defaults[f], 1))  # the one furthest above its default
        if flag == "threads":
            return f"--threads {config['threads']} {why}"
        limit = self.largest_allowed(config, flag)
        allowed = f"; with the other flags as given, --{flag} can be at most {limit:,}" if limit else ""
        return f"--{flag} {config[flag]:,}: {what} {why}{allowed}"

    def largest_allowed(self, config, flag):
        """The largest value of one size flag that passes resource_problem(), the others unchanged (0 if none)."""
        low, high = 0, config[flag]
        while low < high:
            middle = (low + high + 1) // 2
            trial = dict(config, **{flag: middle})
            if flag == "max_seq_len":
                trial["min_seq_len"] = min(trial["min_seq_len"], middle)
            if middle >= 1 and self.resource_problem(trial) is None:
                low = middle
            else:
                high = middle - 1
        return low
