"""What the scripts print: progress for a run and for a sweep, one-line errors, a run's summary.

One Progress serves both a training run (units: steps, with the latest metrics)
and a sweep (units: runs, each finished run announced by a line): a tqdm bar on
a terminal, plain lines in a pipe or a log. Not in train_cls_rnn.py because the
article prints a line every log_every steps and nothing more.
"""

import argparse
import sys
import time


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad flags get one line (not the whole usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def one_line_error(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Progress:
    """How far a job is: a tqdm bar on a terminal, plain lines otherwise ('lines'), or silence ('none')."""

    def __init__(self, total, unit="step", done=0, style="auto"):
        if style == "auto":
            style = "bar" if sys.stderr.isatty() else "lines"
        self.style, self.total, self.unit = style, total, unit
        self.done = self.first = self.last_done = done
        self.start = self.last_time = time.perf_counter()
        self.bar, self.postfix = None, {}
        if style == "bar" and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit=unit, dynamic_ncols=True, mininterval=0.5)

    def advance(self, line=None):
        """One more unit done; line (a finished run, say) is shown above the bar, or with the count and ETA."""
        self.done += 1
        if self.bar is not None:
            if line is not None:
                self.bar.write(line)
            self.bar.update()
        elif self.style == "lines":
            if line is not None:
                elapsed = time.perf_counter() - self.start
                eta = elapsed / (self.done - self.first) * (self.total - self.done)
                print(f"[{self.done}/{self.total}] {elapsed:.0f} s elapsed, ETA {eta:.0f} s | {line}", flush=True)
            elif time.perf_counter() - self.last_time > 30:  # slow steps: still say something every 30 s
                self.show()

    def note(self, line):
        """A line said once (an event of the run), above the bar or among the lines."""
        if self.bar is not None:
            self.bar.write(line)
        elif self.style == "lines":
            print(line, flush=True)

    def show(self, **metrics):
        """The latest metrics: beside the bar, or as a line with the rate since the last one."""
        if self.bar is not None:
            self.postfix.update(metrics)
            self.bar.set_postfix(self.postfix, refresh=False)
        elif self.style == "lines":
            now = time.perf_counter()
            rate = (self.done - self.last_done) / max(now - self.last_time, 1e-9)
            self.last_done, self.last_time = self.done, now
            shown = " | ".join(f"{k} {v}" for k, v in metrics.items())
            print(f"{self.unit} {self.done}/{self.total} | {shown} | {rate:.0f} {self.unit}s/s", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def print_summary(result):
    """The lines a training run ends with: speed, accuracy, where its checkpoints are, what to try next."""
    config, final = result["config"], result["final"]
    rate = result["steps"] / max(result["wall_time_s"], 1e-9)
    threads = config["threads"]
    where = f"the CPU, {threads} thread{'s' * (threads > 1)}" if result["device"].type == "cpu" else str(result["device"])
    lines = [
        f"Trained {result['steps']} steps in {result['wall_time_s']:.1f} s on {where} ({rate:.0f} steps/s), "
        f"{result['num_params']} parameters.",
        f"  accuracy, lengths {config['min_seq_len']}-{config['max_seq_len']}: {final['accuracy']:.4f} "
        f"({config['eval_samples']} fixed evaluation sequences)",
        f"  accuracy, lengths {config['max_seq_len'] + 1}-{2 * config['max_seq_len']}: {final['accuracy_long']:.4f} "
        "(longer than trained)",
    ]
    if result["checkpoint"]:
        lines.append(f"  checkpoints: {config['save_dir']} (newest: {result['checkpoint']})")
        lines.append(f"  try it:      python predict_cls_rnn.py --save_dir {config['save_dir']}")
    if config["swanlab_mode"] in ("local", "offline"):
        lines.append(f"  dashboard:   swanlab watch {config['swanlab_dir']}")
    print("\n".join(lines), flush=True)
