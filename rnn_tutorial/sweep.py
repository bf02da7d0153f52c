"""Run many training runs on Dask, and keep every finished one on disk.

The one sweep helper of the project: reproduce.py, study.py, residues.py
and article_check.py describe their runs as Tasks and hand them to
run_sweep().

- Engine: Dask's distributed scheduler. By default a local cluster of --jobs
  worker processes (one thread, one torch thread each) on 127.0.0.1, closed at
  the end; --scheduler tcp://HOST:8786 joins a running cluster instead, and the
  project's code is uploaded to it as a zip archive (Dask's UploadFile).
- Nothing finished is lost: each run's record is written to its own JSON file
  the moment it finishes (records/<kind>/<flags>/seed<N>.json). The same
  command again skips the recorded runs; --fresh runs them again.
- Ctrl-C cancels what is pending, keeps what finished, says how to resume and
  exits 130. A run that raises, or whose worker dies, is reported and the
  others go on.

Sections: 1. seeds  2. tasks and their identity  3. the record store
          4. the cluster  5. running a sweep  6. command-line flags
"""

import dataclasses
import functools
import importlib
import json
import os
import platform
import shlex
import sys
import time

from distributed.diagnostics.plugin import SchedulerUploadFile, UploadFile, WorkerPlugin

from rnn_tutorial.console import Progress, one_line_error

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RECORDS = os.path.join(HERE, "records")


# ----------------------------------------------------------------------------
# 1. Seeds: "5" (seeds 1..5), "11-20", or a list "7 11 1001"
# ----------------------------------------------------------------------------


def parse_seeds(values):
    """['5'] -> 1..5; ['11-20'] -> 11..20; ['7', '11', '1001'] -> those. ValueError if malformed."""
    values = " ".join([values] if isinstance(values, str) else values).replace(",", " ").split()
    if not values:
        raise ValueError("no seeds given")
    if len(values) == 1 and values[0].isdigit():
        count = int(values[0])
        if count < 1:
            raise ValueError(f"a seed count must be at least 1 (got {count})")
        return list(range(1, count + 1))
    seeds = []
    for value in values:
        first, dash, last = value.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{value!r} is not a seed, a count or a range like 11-20")
        low, high = int(first), int(last) if dash else int(first)
        if low > high:
            raise ValueError(f"the range {value} is empty")
        seeds.extend(s for s in range(low, high + 1) if s not in seeds)
    return seeds


def describe_seeds(seeds):
    """[1, 2, 3] -> "1-3"; [1, 2, 3, 5, 7, 8] -> "1-3, 5, 7-8"."""
    runs, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            run = seeds[start:i]
            runs.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            start = i
    return ", ".join(runs)


# ----------------------------------------------------------------------------
# 2. Tasks: what to train, and what makes two runs the same run
# ----------------------------------------------------------------------------

# Flags that say where a run writes or how it is shown, not what it computes.
OUTPUT_FLAGS = {"save_dir", "overwrite", "run_name", "save_every", "swanlab_mode", "swanlab_dir", "swanlab_project"}


@dataclasses.dataclass(frozen=True)
class Task:
    """One run: `name` labels it in tables; `flags` + `seed` (for train_cls_rnn.py) say what is trained.

    kind: the runner, as "package.module:function", called on a worker as
    function(name=..., seed=..., flags=[...], **options). folder: where its
    records go (default: the module's own name). Two tasks of one kind with the
    same identity are the same run, whatever their name.
    """

    kind: str
    name: str
    seed: int
    flags: tuple = ()
    options: tuple = ()  # (key, value) pairs passed to the runner, e.g. the article's script text
    cost: float = 1.0  # relative, to start the longest runs first
    folder: str = ""  # the record folder, when it is not the runner's module name

    def payload(self):
        return {"name": self.name, "seed": self.seed, "flags": list(self.flags), **dict(self.options)}


def identity(config):
    """The flags of a config that decide its numbers and differ from the defaults, plus the seed.

    Missing keys count as defaults, so records written before a new flag was
    added still match runs that leave that flag at its default.
    """
    defaults = default_flags()
    kept = {k: v for k, v in config.items() if k not in OUTPUT_FLAGS and k in defaults and v != defaults[k]}
    kept["seed"] = config.get("seed", defaults["seed"])
    return kept


@functools.cache
def default_flags():
    """train_cls_rnn.py's defaults (built once: a parser costs milliseconds, and identity() runs per record)."""
    import train_cls_rnn

    return vars(train_cls_rnn.build_parser().parse_args([]))


def task_config(task):
    """The full train_cls_rnn.py config of a task (ValueError if its flags are refused)."""
    import train_cls_rnn
    from rnn_tutorial.limits import config_error

    parser = train_cls_rnn.build_parser()
    try:
        args = parser.parse_args([*task.flags, "--seed", str(task.seed)])
    except SystemExit:
        raise ValueError(f"{task.name}: train_cls_rnn.py refuses the flags {' '.join(task.flags)}") from None
    error = config_error(args)
    if error:
        raise ValueError(f"{task.name}: {error}")
    return vars(args)


def flags_slug(config):
    """A readable folder name of the non-default flags: 'batch_size=64,lr=0.005' ('defaults' if none)."""
    items = sorted((k, v) for k, v in identity(config).items() if k != "seed")
    return ",".join(f"{k}={v}" for k, v in items) or "defaults"


# ----------------------------------------------------------------------------
# 3. The record store: one JSON file per finished run
# ----------------------------------------------------------------------------


class RecordStore:
    """records/<kind module>/<flags slug>/seed<N>.json, each written atomically when its run finishes."""

    def __init__(self, root=DEFAULT_RECORDS):
        self.root = root

    def path(self, task):
        folder = task.folder or task.kind.split(":")[0].rsplit(".", 1)[-1]
        return os.path.join(self.root, folder, flags_slug(task_config(task)), f"seed{task.seed}.json")

    def attachment(self, task, suffix):
        """Where a file kept beside the record of this run lives: seed<N><suffix> (e.g. seed3.pt)."""
        return self.path(task)[: -len(".json")] + suffix

    def load(self, task):
        """The record of this run, or None if it was never finished (or its file cannot be read)."""
        path = self.path(task)
        try:
            with open(path) as f:
                record = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            print(f"warning: {path} is unreadable ({error}); the run will be done again", file=sys.stderr)
            return None
        return record if identity(record["flags"]) == identity(task_config(task)) else None

    def save(self, task, record):
        """Write to a temporary file, then rename: a stop never leaves half a record.

        A record's "attachments" ({suffix: bytes}, e.g. a run's final weights) are
        written beside it first (seed<N><suffix>), so a record never lacks them.
        """
        from rnn_tutorial.runs import write_atomic, write_json_atomic  # imports torch: not at the top (scheduler)

        path = self.path(task)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for suffix, data in record.pop("attachments", {}).items():
            write_atomic(self.attachment(task, suffix), lambda f: f.write(data))
        write_json_atomic(record, path, separators=(",", ":"))
        return path


# ----------------------------------------------------------------------------
# 4. The cluster: a local one on 127.0.0.1, or an existing one
# ----------------------------------------------------------------------------


def code_archives(folder):
    """The project's code as zip archives for a remote cluster: (the workers', the scheduler's).

    Workers get the rnn_tutorial package and train_cls_rnn.py; the scheduler, which
    only unpickles each task's reference to execute(), gets the package alone (so it
    never imports torch). Each name holds a hash of its contents, so a changed
    checkout never meets a worker's cached copy of the old one.
    """
    import hashlib
    import zipfile

    package = [(os.path.join(HERE, n), f"rnn_tutorial/{n}") for n in sorted(os.listdir(HERE)) if n.endswith(".py")]
    script = [(os.path.join(ROOT, "train_cls_rnn.py"), "train_cls_rnn.py")]
    archives = []
    for who, members in (("workers", package + script), ("scheduler", package)):
        contents = [(name, open(path, "rb").read()) for path, name in members]
        digest = hashlib.sha256(b"".join(name.encode() + data for name, data in contents)).hexdigest()[:12]
        path = os.path.join(folder, f"rnn_tutorial_{who}_{digest}.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in contents:
                archive.writestr(name, data)
        archives.append(path)
    return archives


class QuietLocalWorker(WorkerPlugin):
    """Worker plugin for our own local workers: Ctrl-C is the client's to handle, banners go nowhere.

    A terminal's Ctrl-C reaches every process of the group; the workers ignore
    it and the client shuts them down, so a half-trained run is never mistaken
    for a finished one and no worker prints a traceback.
    """

    idempotent = True
    name = "rnn-tutorial-quiet-local-worker"

    def setup(self, worker):
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # SwanLab's banners from many runs would bury the progress lines

    def teardown(self, worker):
        # Called while the worker closes on our request, its runs all recorded. Python's teardown
        # of torch's modules would take half a second per worker, most of a sweep's closing time;
        # registered last, this exit handler runs first and ends the process at once.
        import atexit

        atexit.register(exit_now)


def exit_now():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Cluster:
    """Context manager: a Dask Client on a local cluster (jobs workers) or on the scheduler at address."""

    def __init__(self, jobs=None, scheduler=None):
        self.jobs, self.scheduler = jobs or os.cpu_count(), scheduler
        self.client = self.cluster = None

    def __enter__(self):
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            refused = tcp_refusal(self.scheduler)
            if refused:  # at once, rather than after Dask's 10 s of retrying
                sys.exit(f"error: cannot join the Dask scheduler at {self.scheduler}: {refused}")
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except Exception as error:  # unreachable, refused, or not an address
                sys.exit(f"error: cannot join the Dask scheduler at {self.scheduler}: {one_line_error(error)}")
            # The workers may not have this checkout, and the scheduler unpickles each task's
            # reference to execute(): send them the code, put on their sys.path (load=True).
            import tempfile

            with tempfile.TemporaryDirectory() as folder:
                workers, scheduler = code_archives(folder)
                self.client.register_plugin(SchedulerUploadFile(scheduler), name="rnn-tutorial:scheduler-code")
                self.client.register_plugin(UploadFile(workers), name="rnn-tutorial:code")
            check_worker_versions(self.client)
        else:
            # One task per worker at a time: when a run kills its worker, no innocent run queued
            # behind it dies too; a run that killed a worker is retried once, then reported.
            with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                                  "distributed.scheduler.worker-saturation": 1.0}):
                self.cluster = LocalCluster(
                    n_workers=self.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", worker_dashboard_address=None,  # loopback, a free port
                )
            self.client = Client(self.cluster)
            self.client.register_plugin(QuietLocalWorker())
        return self.client

    def __exit__(self, exc_type, *exc):
        if exc_type is KeyboardInterrupt:  # the cancelled runs' warnings would bury the resume message
            import logging

            logging.getLogger("distributed").setLevel(logging.CRITICAL)
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def describe(self):
        if self.scheduler:
            return f"the Dask cluster at {self.scheduler} ({len(self.client.scheduler_info()['workers'])} workers)"
        return f"a local Dask cluster of {self.jobs} worker processes on 127.0.0.1"


def tcp_refusal(address):
    """For a tcp://host:port address: why nothing answers there (None if something does, or another scheme)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number: left to Dask's own message
        return None
    if parts.scheme != "tcp" or not host or not port:
        return None
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        return one_line_error(error)
    return None


def runtime_versions():
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__}


def check_worker_versions(client):
    """Warn when a worker's Python or torch differs from ours: its numbers could then differ too."""
    ours = runtime_versions()
    for address, theirs in client.run(runtime_versions).items():
        if theirs != ours:
            print(f"warning: worker {address} runs {theirs}, this machine {ours}; "
                  "results may not be bit-identical", file=sys.stderr)


# ----------------------------------------------------------------------------
# 5. Running a sweep
# ----------------------------------------------------------------------------


def execute(kind, payload):
    """On a worker: import the runner named by kind and call it; add where and how long it ran."""
    started_at = time.time()
    module_name, function_name = kind.split(":")
    runner = getattr(importlib.import_module(module_name), function_name)  # torch's import, on a fresh worker
    import_s = time.time() - started_at
    start = time.perf_counter()
    try:
        record = runner(**payload)
    except SystemExit as stop:  # argparse inside a runner: a refusal, not a dead worker
        raise RuntimeError(f"the run stopped with exit status {stop.code}") from None
    task_s = round(time.perf_counter() - start, 2)
    record.setdefault("wall_time_s", task_s)
    record["env"] = {**runtime_versions(), "machine": platform.machine(), "cpus": os.cpu_count(), "task_s": task_s,
                     "import_s": round(import_s, 3), "started_at": started_at, "worker_pid": os.getpid()}
    return record


@dataclasses.dataclass
class SweepResult:
    records: dict  # Task -> record, for every task that has one (old or new)
    failures: list  # (Task, error message)
    new: int  # runs done by this invocation


def run_sweep(tasks, store, describe, jobs=None, scheduler=None, fresh=False, recheck=False, progress="auto"):
    """Run the tasks that have no record yet (all of them with fresh) and record each as it finishes.

    describe(task, record) -> the line shown for a finished run. recheck: run
    recorded tasks again and report whether their numbers came out the same
    (the stored records are kept). Ctrl-C: cancel, report, exit 130.
    """
    records = {} if fresh else {t: r for t in tasks if (r := store.load(t)) is not None}
    todo = [t for t in tasks if recheck or t not in records]
    todo.sort(key=lambda t: -t.cost)
    if recheck:
        print(f"rechecking {len(todo)} recorded runs")
    elif records:
        print(f"{len(records)} of {len(tasks)} runs already recorded in {store.root}; running the other {len(todo)}")
    if not todo:
        return SweepResult(records, [], 0)

    failures, new = [], 0
    cluster = Cluster(jobs, scheduler)
    bar = None
    try:
        with cluster as client:
            print(f"{len(todo)} runs on {cluster.describe()}", flush=True)
            futures = {client.submit(execute, t.kind, t.payload(), pure=False, priority=-i): t
                       for i, t in enumerate(todo)}
            from distributed import as_completed

            bar = Progress(len(todo) if recheck else len(tasks), "run", done=0 if recheck else len(records),
                           style=progress)
            completed = as_completed(futures)
            for future in completed:
                task = futures[future]
                if future.status in ("lost", "pending"):  # done, then its worker died before we fetched the
                    completed.add(future)                 # record: Dask runs it again, we wait for that
                    continue
                if future.status != "finished":
                    error = one_line_error(future.exception())
                    failures.append((task, error))
                    bar.advance(f"{task.name} seed {task.seed}: FAILED: {error}")
                    continue
                record = future.result()
                new += 1
                if recheck:
                    bar.advance(f"{task.name} seed {task.seed}: {compare_records(records.get(task), record)}")
                    continue
                store.save(task, record)
                records[task] = record
                bar.advance(describe(task, record))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        kept = sum(1 for t in tasks if store.load(t) is not None)
        print(f"\nInterrupted: {kept} of {len(tasks)} runs are recorded in {store.root} "
              f"({new} finished in this session); the pending ones were cancelled.\n"
              f"To resume, run the same command again: {resume_command()}", file=sys.stderr, flush=True)
        sys.exit(130)
    if bar is not None:
        bar.close()
    return SweepResult(records, failures, new)


def compare_records(old, new, ignore=("wall_time_s", "env", "attachments")):
    """'identical' or which fields of a rerun differ from the stored record.

    Flags compare by identity(): a flag added since the record was written,
    left at its default, is no difference.
    """
    if old is None:
        return "no stored record to compare with"
    keys = (set(old) | set(new)) - set(ignore)
    same_flags = "flags" not in keys or identity(old.get("flags", {})) == identity(new.get("flags", {}))
    differing = sorted(k for k in keys - {"flags"} if old.get(k) != new.get(k)) + ([] if same_flags else ["flags"])
    return "identical to the stored record" if not differing else "DIFFERS in " + ", ".join(differing)


def resume_command():
    return "python " + shlex.join([sys.argv[0]] + [a for a in sys.argv[1:] if a != "--fresh"])


def exit_if_failed(result):
    """After the results are written: list the failed runs and exit 1, so that a rerun retries them."""
    if result.failures:
        print(f"\n{len(result.failures)} runs failed (not recorded; the same command retries them):", file=sys.stderr)
        for task, error in result.failures:
            print(f"  {task.name} seed {task.seed}: {error}", file=sys.stderr)
        sys.exit(1)


# ----------------------------------------------------------------------------
# 6. Command-line flags shared by every multi-run script
# ----------------------------------------------------------------------------


def add_sweep_arguments(parser, seeds_default="5"):
    group = parser.add_argument_group("sweep engine (Dask)")
    group.add_argument("--seeds", nargs="+", default=[seeds_default], metavar="S",
                       help="a count K (seeds 1..K), a range (11-20) or a list (7 11 1001)")
    group.add_argument("--jobs", type=int, default=os.cpu_count(),
                       help="worker processes of the local cluster (one thread and one torch thread each)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="join this Dask scheduler (e.g. tcp://10.0.0.5:8786) instead of starting a local cluster")
    group.add_argument("--records", default=DEFAULT_RECORDS,
                       help="folder of the per-run records (one JSON file per finished run)")
    group.add_argument("--fresh", action="store_true", help="run every selected run again, replacing its record")
    group.add_argument("--recheck", action="store_true",
                       help="run recorded runs again and report whether the numbers are identical (records kept)")
    return group


def check_sweep_arguments(parser, args):
    """Turn --seeds into a list and refuse impossible values (exit 2, one line)."""
    try:
        args.seeds = parse_seeds(args.seeds)
    except ValueError as error:
        parser.error(f"--seeds: {error}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1 (got {args.jobs})")
    if args.fresh and args.recheck:
        parser.error("--fresh and --recheck do not go together")
    return args


if __name__ == "__main__":
    sys.exit("sweep.py is a helper; run rnn_tutorial/reproduce.py, study.py, residues.py or article_check.py")
