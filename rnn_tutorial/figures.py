"""Draw the README's figures: two diagrams, the schedules, the results of reproduce.py and of study.py.

    python rnn_tutorial/figures.py                 # from rnn_tutorial/results.json and study.json
    python rnn_tutorial/figures.py --results other/results.json --out other/

Every figure is drawn here, by matplotlib, from this project's code and data:
the network and packing diagrams from a real pack_padded_sequence call, the
schedules from build_scheduler(), the curves from results.json.
"""

import argparse
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import train_cls_rnn  # noqa: E402
from rnn_tutorial.experiments import ARTICLE_SIX, claimed_level  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

SEQ_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52"]
PAD_COLOR = "#D9D9D9"


def box(ax, x, y, w, h, text, color="#EAF2FB", edge="#34495E", size=9):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor=edge, linewidth=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def arrow(ax, start, end, color="#34495E"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color=color, linewidth=1.1))


# ----------------------------------------------------------------------------
# Diagrams
# ----------------------------------------------------------------------------


def draw_network(path):
    """Embedding -> 2 stacked RNN layers unrolled over [3, 7, 1, 9] + padding -> Linear on h_n."""
    fig, ax = plt.subplots(figsize=(9, 5.2))
    tokens = ["3", "7", "1", "9", "pad"]
    xs = [1.2 + 1.5 * i for i in range(len(tokens))]
    for i, (x, token) in enumerate(zip(xs, tokens)):
        padded = token == "pad"
        edge = "#AAAAAA" if padded else "#34495E"
        box(ax, x, 0.4, 0.8, 0.45, token, color=PAD_COLOR if padded else "#FFFFFF", edge=edge)
        box(ax, x, 1.4, 1.0, 0.5, "embedding" if not padded else "zero row",
            color=PAD_COLOR if padded else "#FDEBD0", edge=edge, size=8)
        for layer, y in enumerate([2.6, 3.8]):
            box(ax, x, y, 1.0, 0.6, f"RNN {layer + 1}" if not padded else "", color=PAD_COLOR if padded else "#D6EAF8",
                edge=edge, size=8)
        if not padded:
            arrow(ax, (x, 0.63), (x, 1.15))
            arrow(ax, (x, 1.65), (x, 2.3))
            arrow(ax, (x, 2.9), (x, 3.5))
            if i < 3:
                for y in (2.6, 3.8):
                    arrow(ax, (x + 0.5, y), (xs[i + 1] - 0.5, y))
    ax.text(xs[4], 3.2, "packing:\nno step on\npadding", ha="center", va="center", fontsize=8, color="#777777")
    arrow(ax, (xs[3] + 0.1, 4.1), (xs[3] + 0.9, 4.75))
    ax.text(xs[3] + 0.25, 4.55, "$h_n$ of the\nlast layer", fontsize=8, ha="right")
    box(ax, xs[3] + 1.6, 4.95, 1.9, 0.5, "Linear -> 10 logits", color="#D5F5E3")
    arrow(ax, (xs[3] + 2.55, 4.95), (xs[3] + 3.0, 4.95))
    ax.text(xs[3] + 3.05, 4.95, "argmax = 0\n(3+7+1+9 = 20)", va="center", fontsize=9)
    ax.set_xlim(0.4, 10.6)
    ax.set_ylim(0, 5.5)
    ax.axis("off")
    ax.set_title("RnnClsNet: embedding -> stacked RNN over the packed batch -> linear on $h_n$", fontsize=11)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def draw_packing(path):
    """A padded batch of three sequences and the time-major PackedSequence torch makes of it."""
    sequences = [[3, 7, 1, 9], [5, 2], [8, 8, 8]]
    inputs, lengths, _ = train_cls_rnn.pad_batch([(s, len(s), 0) for s in sequences], pad_token=10)
    packed = pack_padded_sequence(inputs.unsqueeze(-1).float(), lengths, batch_first=True)
    owner = {tuple(s): i for i, s in enumerate(sequences)}
    row_owner = [owner[tuple(row[:n].tolist())] for row, n in zip(inputs, lengths)]

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1, 1.6]})
    for r, (row, n) in enumerate(zip(inputs.tolist(), lengths.tolist())):
        for t, value in enumerate(row):
            color = SEQ_COLORS[row_owner[r]] if t < n else PAD_COLOR
            left.add_patch(plt.Rectangle((t, -r), 0.95, 0.9, color=color))
            left.text(t + 0.47, -r + 0.45, "pad" if t >= n else str(value), ha="center", va="center",
                      color="white" if t < n else "#555555", fontsize=10)
        left.text(-0.2, -r + 0.45, f"len {n}", ha="right", va="center", fontsize=9)
    left.set_xlim(-1.3, inputs.shape[1])
    left.set_ylim(-len(sequences) + 0.8, 1.2)
    left.axis("off")
    left.set_title("padded batch (sorted by length)", fontsize=10)

    position, values = 0, packed.data.squeeze(-1).long().tolist()
    for t, size in enumerate(packed.batch_sizes.tolist()):
        for b in range(size):
            right.add_patch(plt.Rectangle((position, 0), 0.95, 0.9, color=SEQ_COLORS[row_owner[b]]))
            right.text(position + 0.47, 0.45, str(values[position]), ha="center", va="center", color="white")
            position += 1
        right.text(position - size / 2, -0.35, f"t={t + 1}: {size}", ha="center", fontsize=8)
    right.set_xlim(-0.2, position + 0.2)
    right.set_ylim(-0.7, 1.3)
    right.axis("off")
    right.set_title(f"packed: data of {position} steps, batch_sizes {packed.batch_sizes.tolist()} "
                    "(no padding left)", fontsize=10)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)


def schedule_trace(total_steps, warmup_step, lr, min_lr):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = train_cls_rnn.build_scheduler(optimizer, total_steps, warmup_step, min_lr)
    trace = []
    for _ in range(total_steps):
        trace.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return trace


def draw_schedules(path):
    """The learning rate the sota run (100 warmup steps) and sota_warmup (2000) actually get."""
    runs = {"cosine only (warmup 0)": 0, "sota: warmup 100 + cosine": 100, "sota_warmup: warmup 2000 + cosine": 2000}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for (label, warmup), style in zip(runs.items(), [":", "--", "-"]):
        trace = schedule_trace(20000, warmup, 0.005, 0.0001)
        for ax, end in zip(axes, [20000, 3000]):
            ax.plot(range(end), trace[:end], style, label=label)
    for ax, title in zip(axes, ["all 20000 steps", "the first 3000 steps"]):
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("lr 0.005, min_lr 0.0001: LinearLR from 1% then CosineAnnealingLR(T_max=20000)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------


def by_experiment(runs):
    grouped = {}
    for run in runs:
        grouped.setdefault(run["run_name"], []).append(run)
    return grouped


def mean_curve(runs, curve, key):
    steps = [point["step"] for point in runs[0][curve]]
    values = [statistics.fmean(run[curve][i][key] for run in runs) for i in range(len(steps))]
    return steps, values


def draw_accuracy_curves(results, path):
    """Evaluation accuracy over training: each seed thin, the mean thick."""
    grouped = by_experiment(results["runs"])
    cols = 3
    rows = (len(grouped) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), sharex=True, sharey=True, squeeze=False)
    for ax, (name, runs) in zip(axes.flat, grouped.items()):
        for run in runs:
            curve = run["eval_curve"]
            ax.plot([p["step"] for p in curve], [p["accuracy"] for p in curve], lw=0.8, alpha=0.5)
        steps, mean = mean_curve(runs, "eval_curve", "accuracy")
        ax.plot(steps, mean, color="black", lw=2, label="mean")
        converged = sum(run["converged"] for run in runs)
        ax.set_title(f"{name} ({converged}/{len(runs)} reach 99%)", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(grouped):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    fig.suptitle("accuracy on the fixed evaluation set (trained lengths), one thin line per seed", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_accuracy_by_length(results, path):
    """Final accuracy against sequence length, mean over seeds, trained lengths shaded."""
    grouped = by_experiment(results["runs"])
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for name, runs in grouped.items():
        lengths = sorted(int(k) for k in runs[0]["accuracy_by_length"])
        mean = [statistics.fmean(run["accuracy_by_length"][str(n)] for run in runs) for n in lengths]
        ax.plot(lengths, mean, marker=".", lw=1.3, label=name)
    flags = results["runs"][0]["flags"]
    ax.axvspan(flags["min_seq_len"] - 0.5, flags["max_seq_len"] + 0.5, color="#F4D03F", alpha=0.25,
               label="trained lengths")
    ax.axhline(1 / (flags["max_number"] + 1), color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("sequence length")
    ax.set_ylabel("accuracy (mean over seeds)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("does it extrapolate? accuracy at each length", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_early_loss(results, path, names=("sota", "sota_warmup"), until=6000):
    """Training loss early on, per seed: the article's 'oscillation' diagnosis."""
    grouped = by_experiment(results["runs"])
    names = [n for n in names if n in grouped] or list(grouped)[:2]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.3), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        for run in grouped[name]:
            points = [p for p in run["train_curve"] if p["step"] <= until]
            label = f"seed {run['seed']}" + (" (converged)" if run["converged"] else "")
            ax.plot([p["step"] for p in points], [p["loss"] for p in points], lw=0.9, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_xlim(0, until)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    classes = results["runs"][0]["flags"]["max_number"] + 1
    for d in (d for d in range(2, classes + 1) if classes % d == 0):  # plateaus: ln(d) = d classes left to guess
        for ax in axes[0]:
            ax.axhline(math.log(d), color="grey", ls=":", lw=0.8)
        axes[0][-1].text(until, math.log(d), f" ln {d}", va="center", fontsize=8, color="grey")
    axes[0][0].set_ylabel("training loss (one batch)")
    fig.suptitle(f"training loss over the first {until} steps", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Study (study.py): luck, the ablation, inside
# ----------------------------------------------------------------------------

def draw_luck(study, path):
    """One dot per seed per experiment; the article's claimed level as a red bar."""
    runs = study["luck"]["runs"]
    names = [n for n in ARTICLE_SIX if any(r["run_name"] == n for r in runs)]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for x, name in enumerate(names):
        mine = sorted((r for r in runs if r["run_name"] == name), key=lambda r: r["seed"])
        jitter = [((r["seed"] * 37) % 11 - 5) / 25 for r in mine]
        colors = ["#2E86C1" if r["converged"] else "#7F8C8D" for r in mine]
        ax.scatter([x + j for j in jitter], [r["test_accuracy"] for r in mine], s=18, c=colors, zorder=3)
        if claimed_level(name) is not None:
            ax.plot([x - 0.35, x + 0.35], [claimed_level(name)] * 2, color="#C0392B", lw=2.5, zorder=2,
                    label="the article's claim" if x == 0 else None)
    ax.axhline(0.99, color="grey", ls=":", lw=1)
    ax.text(len(names) - 0.5, 0.99, " 99%", va="center", fontsize=8, color="grey")
    for level, label in ((0.5, "50%: knows the sum mod 5"), (0.2, "20%: knows the parity")):
        ax.axhline(level, color="#BBBBBB", ls="--", lw=0.8)
        ax.text(-0.45, level + 0.01, label, fontsize=7, color="grey")
    ax.set_xticks(range(len(names)), names, fontsize=9)
    ax.set_ylabel("accuracy at lengths 2-5 (10,000 test sequences)")
    ax.set_ylim(0, 1.03)
    ax.set_title(f"the article's six experiments, one dot per seed ({len(study['luck']['seeds'])} seeds; "
                 "blue: ≥ 99%)", fontsize=11)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def panel_grid(count, height, columns=4, **shared):
    """A grid of panels, four to a row; the unused ones are switched off."""
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, min(count, columns), figsize=(3.3 * min(count, columns), height * rows),
                             squeeze=False, **shared)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, axes


def draw_residues_over_time(study, path):
    """Accuracy, and accuracy mod 2 and mod 5, at every evaluation of a few runs."""
    runs = study["inside"]["runs"]
    fig, axes = panel_grid(len(runs), 3.2, sharey=True)
    for ax, run in zip(axes.flat, runs):
        steps = [p["step"] for p in run["curve"]]
        ax.plot(steps, [p["accuracy_mod5"] for p in run["curve"]], color="#E67E22", lw=1.4, label="right mod 5")
        ax.plot(steps, [p["accuracy_mod2"] for p in run["curve"]], color="#8E44AD", lw=1.4, label="right mod 2")
        ax.plot(steps, [p["accuracy"] for p in run["curve"]], color="black", lw=1.8, label="right (mod 10)")
        ax.set_title(f"{run['run_name']} seed {run['seed']}: {100 * run['test_accuracy']:.0f}%", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (evaluation set)")
    axes[0][0].set_ylim(0, 1.02)
    axes.flat[len(runs) - 1].legend(fontsize=7, loc="lower right")
    fig.suptitle("which half of the answer is learned when: the sum mod 5 and its parity", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_hidden_states(study, path):
    """The final hidden state of 1,500 test sequences on its first two principal components, by sum mod 10."""
    runs = study["inside"]["runs"]
    fig, axes = panel_grid(len(runs), 3.5)
    cmap = plt.get_cmap("tab10")
    for ax, run in zip(axes.flat, runs):
        pca = run["pca"]
        xs, ys = [p[0] for p in pca["points"]], [p[1] for p in pca["points"]]
        ax.scatter(xs, ys, c=[cmap(s % 10) for s in pca["sum_mod"]], s=4, alpha=0.7)
        for residue in range(10):  # label each cluster at its centre
            members = [i for i, s in enumerate(pca["sum_mod"]) if s == residue]
            if members:
                ax.text(statistics.fmean(xs[i] for i in members), statistics.fmean(ys[i] for i in members),
                        str(residue), fontsize=9, weight="bold", ha="center", va="center")
        explained = pca["explained_variance"]
        ax.set_title(f"{run['run_name']} seed {run['seed']}: {100 * run['test_accuracy']:.0f}%\n"
                     f"2 directions: {100 * (explained[0] + explained[1]):.0f}% of the class means' spread",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("final hidden state on the two directions that separate the class means most; "
                 "colour and label: the sum mod 10", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_study(study_path, out_dir):
    """The study's figures, for the parts study.json holds; returns their paths."""
    with open(study_path) as f:
        study = json.load(f)
    figures = {"luck.png": ("luck", draw_luck), "residues_over_time.png": ("inside", draw_residues_over_time),
               "hidden_states.png": ("inside", draw_hidden_states)}
    paths = []
    for name, (part, draw) in figures.items():
        if study.get(part, {}).get("runs"):
            draw(study, os.path.join(out_dir, name))
            paths.append(os.path.join(out_dir, name))
    return paths


def draw_all(results_path, out_dir):
    """Every figure; returns their paths."""
    with open(results_path) as f:
        results = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    figures = {
        "rnn_net.png": draw_network,
        "packing.png": draw_packing,
        "lr_schedules.png": draw_schedules,
        "accuracy_curves.png": lambda p: draw_accuracy_curves(results, p),
        "accuracy_by_length.png": lambda p: draw_accuracy_by_length(results, p),
        "early_loss.png": lambda p: draw_early_loss(results, p),
    }
    paths = []
    for name, draw in figures.items():
        path = os.path.join(out_dir, name)
        draw(path)
        paths.append(path)
    return paths


def main():
    p = argparse.ArgumentParser(description="Draw the README's figures from results.json.")
    p.add_argument("--results", default=os.path.join(HERE, "results.json"), help="written by reproduce.py")
    p.add_argument("--study", default=os.path.join(HERE, "study.json"), help="written by study.py (if present)")
    p.add_argument("--out", default=HERE, help="folder for the PNG files")
    args = p.parse_args()
    if not os.path.isfile(args.results):
        p.error(f"{args.results} not found; run rnn_tutorial/reproduce.py first")
    paths = draw_all(args.results, args.out)
    if os.path.isfile(args.study):
        paths += draw_study(args.study, args.out)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
