"""Is it really an adder? Judge a trained model on every kind of sequence, and prove it where one can.

A test set drawn like the training data cannot tell "learned the rule" from
"fits the data": uniform random digits almost never hold a long run of one
digit, so a model can be right on 5,000-digit random sequences and still
answer "4 followed by 58 zeros" with 0. The task has one right answer for
every sequence, so this audit looks for the input that breaks a model, and
then tries to show that none exists:

  families        fixed, seeded kinds of sequence a skeptic would try (FAMILIES):
                  judged at every prefix, so one 2,000-digit run of 7s tests
                  every run length from 1 to 2,000
  search          the shortest wrong sequence it can find: every sequence of up
                  to 5 digits, then a beam that keeps the sequences whose right
                  answer wins by the least, then a greedy shortening
  gradient search a second search, unlike the beam (and never used in training):
                  whole sequences changed one digit at a time where the gradient
                  says the right answer's margin shrinks most
  automaton       hidden states quantised to ten states (the nearest class
                  mean); the transition table per digit, checked against
                  s -> (s + d) mod 10
  proof           interval arithmetic through the cell (boxes of hidden states,
                  one or more per automaton state, grown to a fixpoint from the
                  initial state): if every digit maps every box into a box of
                  the right state and the read-out is right everywhere in every
                  box, the model is right on every sequence of every length.
                  For one layer of the plain tanh cell, Euclidean balls too
                  (the cell's Lipschitz bound on each ball): boxes suit
                  saturated units, balls a map that contracts near its states.
                  Then boxes keyed by the sum and the last 2 or 3 digits, for
                  a network that keeps its last few digits in its state
  stretch         why regions fail (tanh cell): how much one step stretches
                  distances and boxes at the visited states, and after how
                  many digits products of steps contract

    python rnn_tutorial/audit.py                          # the newest run under ./output
    python rnn_tutorial/audit.py --save_dir ./output/reliable --figure automaton.png

Exit status: 0 when no counterexample was found (proven or not), 1 when one
was, 2 for bad input. The last line printed is the verdict.
"""

import argparse
import dataclasses
import itertools
import json
import math
import os
import random
import sys
import time

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

# ----------------------------------------------------------------------------
# 1. The model as a state machine
# ----------------------------------------------------------------------------


def flat_state(model, hx):
    """The whole recurrent state as one vector per sequence: every layer's h (and, for an LSTM, c)."""
    parts = hx if isinstance(hx, tuple) else (hx,)
    return torch.cat([p.transpose(0, 1).reshape(p.shape[1], -1) for p in parts], dim=1)


def unflat_state(model, flat):
    layers, hidden = model.rnn.num_layers, model.rnn.hidden_size
    parts = flat.reshape(flat.shape[0], -1, layers, hidden).permute(1, 2, 0, 3).contiguous()
    return (parts[0], parts[1]) if isinstance(model.rnn, torch.nn.LSTM) else parts[0]


@torch.inference_mode()
def step(model, hx, digits):
    """One digit for each sequence of a batch: (new state, logits). hx None is the initial (zero) state."""
    out, hx = model.rnn(model.embedding(digits)[:, None, :], hx)
    return hx, model.fc(out[:, 0])


@torch.inference_mode()
def answers_at_every_prefix(model, digits):
    """(batch, time): the model's answer after each prefix of equal-length sequences (one pass over them)."""
    out, _ = model.rnn(model.embedding(digits))
    return model.fc(out).argmax(dim=-1)


def first_wrong_prefix(digits, wrong):
    """The shortest prefix marked wrong among the rows of digits (batch, time), or None."""
    if not wrong.any():
        return None
    lengths = torch.where(wrong, torch.arange(1, digits.shape[1] + 1), digits.shape[1] + 1).amin(dim=1)
    row = int(lengths.argmin())
    return digits[row, : int(lengths[row])].tolist()


@torch.inference_mode()
def answer(model, sequence):
    """The model's answer to one sequence, computed as the predictor does (one packed forward pass)."""
    return int(model(torch.tensor([sequence]), torch.tensor([len(sequence)])).argmax())


# ----------------------------------------------------------------------------
# 2. Families of sequences a skeptic would try
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    what: str
    make: object  # (rng: random.Random, digits: int) -> list of equal-length groups of sequences


def runs_after_heads(rng, base, head_lengths, tail):
    """A few random digits (the head) followed by a run of one digit: every head length, every run digit."""
    groups = []
    for head_length in head_lengths:
        groups.append([[rng.randrange(base) for _ in range(head_length)] + [d] * tail
                       for d in range(base) for _ in range(4)])
    return groups


FAMILIES = [
    Family("random, 1,000 and 5,000 digits", "uniform random digits, as in training but far longer",
           lambda rng, b: [[[rng.randrange(b) for _ in range(1000)] for _ in range(64)],
                           [[rng.randrange(b) for _ in range(5000)] for _ in range(8)]]),
    Family("one digit repeated", "d d d ... (every digit, 2,000 times): every run length 1-2,000",
           lambda rng, b: [[[d] * 2000 for d in range(b)]]),
    Family("a digit, then zeros", "d 0 0 0 ... (every digit, then 2,000 zeros)",
           lambda rng, b: [[[d] + [0] * 2000 for d in range(b)]]),
    Family("random head, then a run", "1-5 random digits, then one digit repeated 1,000 times",
           lambda rng, b: runs_after_heads(rng, b, range(1, 6), 1000)),
    Family("sparse", "zeros with a random non-zero digit at 2% of the positions, 2,000 digits",
           lambda rng, b: [[[rng.randrange(1, b) if rng.random() < 0.02 else 0 for _ in range(2000)]
                            for _ in range(64)]]),
    Family("skewed digits", "each sequence draws its digits from its own lopsided distribution "
           "(Dirichlet 0.1), 1,000 digits", lambda rng, b: [[skewed(rng, b, 1000) for _ in range(64)]]),
    Family("periodic", "a random motif of 2-4 digits repeated, 1,000 digits",
           lambda rng, b: [[periodic(rng, b, 1000) for _ in range(64)]]),
    Family("runs of runs", "runs of random digits with random lengths (mean 50), 2,000 digits",
           lambda rng, b: [[runs_of_runs(rng, b, 2000) for _ in range(64)]]),
]
FAMILY_SEED = 20_261_123  # fixed: the same sequences for every model and every run of the audit


def skewed(rng, base, length):
    weights = [rng.gammavariate(0.1, 1.0) + 1e-12 for _ in range(base)]
    return rng.choices(range(base), weights=weights, k=length)


def periodic(rng, base, length):
    motif = [rng.randrange(base) for _ in range(rng.randint(2, 4))]
    return (motif * length)[:length]


def runs_of_runs(rng, base, length):
    sequence = []
    while len(sequence) < length:
        sequence += [rng.randrange(base)] * (1 + int(rng.expovariate(1 / 49)))
    return sequence[:length]


def family_sequences(family, base):
    """The family's fixed sequences, as (batch, time) tensors of equal lengths."""
    rng = random.Random(f"{FAMILY_SEED}:{family.name}:{base}")
    return [torch.tensor(group) for group in family.make(rng, base)]


def judge_families(model, base, families=FAMILIES):
    """Per family: prefixes judged, how many wrong, and the shortest wrong prefix found."""
    results = []
    for family in families:
        judged = wrong = 0
        shortest = None
        for digits in family_sequences(family, base):
            misses = answers_at_every_prefix(model, digits) != digits.cumsum(dim=1) % base
            judged, wrong = judged + misses.numel(), wrong + int(misses.sum())
            found = first_wrong_prefix(digits, misses)
            if found is not None and (shortest is None or len(found) < len(shortest)):
                shortest = found
        results.append({"family": family.name, "what": family.what, "prefixes": judged, "wrong": wrong,
                        "accuracy": 1 - wrong / judged, "shortest_wrong": shortest})
    return results


# ----------------------------------------------------------------------------
# 3. The search for the shortest wrong sequence
# ----------------------------------------------------------------------------


SEARCHED = 10_000_000  # sequences each search tries by default: about 15 s for a 128-unit model on one core


def each_digit_after(count, base):
    """Every one of count things followed by every digit: (the thing's index, the digit), count * base each."""
    return torch.arange(count).repeat_interleave(base), torch.arange(base).repeat(count)


def right_margin(logits, truth, dim):
    """How much the right answer's logit beats every other along dim (<= 0: wrong); truth has size 1 there."""
    return logits.gather(dim, truth).squeeze(dim) - logits.scatter(dim, truth, -math.inf).amax(dim=dim)


@torch.inference_mode()
def beam_levels(model, base, exhaustive_length=5, beam=2048, max_length=1000, max_sequences=SEARCHED):
    """Sequences one digit longer at each level: yields (margins, sequence) per level, where margins[i]
    is how much the right answer of the i-th sequence wins by (<= 0: wrong) and sequence(i) its digits.

    Every sequence of up to exhaustive_length digits is tried; then the beam keeps the `beam` sequences
    whose right answer wins by the least (the same number for each right answer, so no state is left
    out) and tries every next digit, up to max_length digits or until max_sequences have been tried (a
    count, not a time, so that the same model gets the same verdict on any machine).
    """
    tried = 0
    hx, sums, levels = None, torch.zeros(1, dtype=torch.long), []  # levels: (parent of each, its last digit)

    def walk_back(level, index):  # follow the parents back to the first digit
        digits = []
        for parents, last in reversed(levels[: level + 1]):
            digits.append(int(last[index]))
            index = int(parents[index])
        return digits[::-1]

    for length in range(1, max_length + 1):
        parents, digits = each_digit_after(len(sums), base)
        hx = None if hx is None else (tuple(h[:, parents] for h in hx) if isinstance(hx, tuple) else hx[:, parents])
        hx, logits = step(model, hx, digits)
        sums = (sums[parents] + digits) % base
        margin = right_margin(logits, sums[:, None], dim=1)
        levels.append((parents, digits))
        tried += len(margin)
        yield margin, (lambda index, level=length - 1: walk_back(level, index))
        if length >= exhaustive_length:
            if tried >= max_sequences:
                return
            keep = torch.cat([idx[margin[idx].argsort()[: beam // base]]
                              for s in range(base) if len(idx := (sums == s).nonzero()[:, 0])])
            hx = tuple(h[:, keep] for h in hx) if isinstance(hx, tuple) else hx[:, keep]
            sums = sums[keep]
            levels[-1] = (parents[keep], digits[keep])


def search(model, base, exhaustive_length=5, beam=2048, max_length=1000, max_sequences=SEARCHED):
    """The shortest wrong sequence found by beam_levels, or None; and how many sequences were tried."""
    tried = 0
    for margin, sequence in beam_levels(model, base, exhaustive_length, beam, max_length, max_sequences):
        tried += len(margin)
        if (margin <= 0).any():
            return sequence(int(margin.argmin())), tried
    return None, tried


@torch.inference_mode()
def margins_at_every_prefix(model, digits, base):
    """(batch, time): how much the right answer wins by after each prefix (<= 0: the model is wrong there)."""
    out, _ = model.rnn(model.embedding(digits))
    logits = model.fc(out)
    return right_margin(logits, (digits.cumsum(dim=1) % base)[..., None], dim=2)


def gradient_search(model, base, max_sequences=SEARCHED, batch=32, top=64, lengths=(10, 14, 20, 28, 40),
                    patience=20, seed=0):
    """A second search, unlike the beam: whole sequences improved one digit at a time along the gradient
    (greedy coordinate gradient, as HotFlip and GCG attack language models). The shortest wrong prefix
    found, or None; and how many sequences (prefixes) were judged.

    The beam grows sequences left to right and drops every prefix the model is sure of; this search
    changes any digit of a whole sequence, so it reaches wrong sequences whose prefixes look easy. For
    each digit of each sequence and each value it could take, the final logits are predicted to first
    order (the digits as one-hot vectors), with the right answer moved by the change; the `top` changes
    predicted to shrink the margin most are tried exactly, and the best is kept. A sequence that has not
    improved for `patience` steps starts again from random digits; it stops once max_sequences prefixes
    have been judged. No recipe trains on what it finds (the hard sequences of --hard_share come from
    the beam), so it judges `reliable` by a search it never saw.
    """
    generator = torch.Generator().manual_seed(seed)
    table = model.embedding.weight.detach()[:base]
    tried, round_ = 0, 0
    while tried < max_sequences:
        length = lengths[round_ % len(lengths)]
        round_ += 1
        digits = torch.randint(0, base, (batch, length), generator=generator)
        best = margins_at_every_prefix(model, digits, base).amin(dim=1)
        stalled = torch.zeros(batch, dtype=torch.long)
        for _ in range(200):
            if tried >= max_sequences:
                break
            onehot = torch.nn.functional.one_hot(digits, base).float().requires_grad_(True)
            with torch.enable_grad():
                out, _ = model.rnn(onehot @ table)
                logits = model.fc(out[:, -1])
                jacobian = torch.stack([torch.autograd.grad(logits[:, c].sum(), onehot, retain_graph=True)[0]
                                        for c in range(base)], dim=1)  # (batch, class, position, value)
            now = jacobian.gather(3, digits[:, None, :, None].expand(-1, base, -1, 1))
            predicted = logits.detach()[:, :, None, None] + jacobian - now
            truth = (digits.sum(dim=1)[:, None, None] + torch.arange(base) - digits[:, :, None]) % base
            margin = right_margin(predicted, truth[:, None], dim=1)  # (batch, position, value)
            margin = margin.masked_fill(onehot.detach().bool(), math.inf)  # the digit it already holds
            change = margin.flatten(1).argsort(dim=1)[:, :top]
            candidates = digits[:, None, :].repeat(1, top, 1)
            candidates.scatter_(2, (change // base)[..., None], (change % base)[..., None])
            exact = margins_at_every_prefix(model, candidates.flatten(0, 1), base).view(batch, top, length)
            tried += exact.numel()
            if (exact <= 0).any():
                return first_wrong_prefix(candidates.flatten(0, 1), exact.flatten(0, 1) <= 0), tried
            lowest, chosen = exact.amin(dim=2).min(dim=1)
            better = lowest < best
            digits = torch.where(better[:, None], candidates[torch.arange(batch), chosen], digits)
            best, stalled = torch.minimum(best, lowest), torch.where(better, 0, stalled + 1)
            restart = stalled > patience
            if restart.any():
                digits[restart] = torch.randint(0, base, (int(restart.sum()), length), generator=generator)
                best[restart] = margins_at_every_prefix(model, digits[restart], base).amin(dim=1)
                stalled[restart] = 0
    return None, tried


def shorten(model, sequence, base):
    """A shorter sequence the model still gets wrong: drop digits one at a time while it stays wrong."""
    def wrong(s):
        return len(s) > 0 and answer(model, s) != sum(s) % base

    changed = True
    while changed:
        changed = False
        for i in range(len(sequence)):
            candidate = sequence[:i] + sequence[i + 1:]
            if wrong(candidate):
                sequence, changed = candidate, True
                break
    return sequence


def run_length(sequence):
    """[4, 0, 0, 0, 0] -> '4 0x4': runs of three or more written as digit x count."""
    parts, i = [], 0
    while i < len(sequence):
        j = i
        while j < len(sequence) and sequence[j] == sequence[i]:
            j += 1
        parts.append(f"{sequence[i]}x{j - i}" if j - i >= 3 else " ".join([str(sequence[i])] * (j - i)))
        i = j
    return " ".join(parts)


def shown(sequence, width=60):
    """run_length(), cut to about width characters for a table cell, with the sequence's length."""
    text = run_length(sequence)
    return text if len(text) <= width else f"{text[:width].rsplit(' ', 1)[0]} ... ({len(sequence):,} digits)"


# ----------------------------------------------------------------------------
# 4. The extracted automaton
# ----------------------------------------------------------------------------


@torch.inference_mode()
def visited_states(model, base, count=256, length=60, seed=0):
    """Whole states after every prefix of random sequences (lengths 1-length): (states, true sums, the model's
    answers)."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, base, (count, length), generator=generator)
    hx, states, answers = None, [], []
    for t in range(length):
        hx, logits = step(model, hx, digits[:, t])
        states.append(flat_state(model, hx)), answers.append(logits.argmax(dim=1))
    return torch.cat(states), (digits.cumsum(dim=1) % base).T.reshape(-1), torch.cat(answers)


@torch.inference_mode()
def extract_automaton(model, base):
    """The automaton the network runs: each state quantised to the nearest mean of the states it answers s
    for (what it believes the sum is); the table of where each digit takes each such state."""
    states, sums, answers = visited_states(model, base)
    means = torch.stack([states[answers == s].mean(dim=0) if (answers == s).any() else
                         torch.full_like(states[0], math.inf) for s in range(base)])
    quantised = torch.cdist(states, means).argmin(dim=1)
    table, purity = [], []
    for s in range(base):
        mine = states[quantised == s][:200]
        row, row_purity = [], []
        for d in range(base):
            if len(mine) == 0:
                row.append(None), row_purity.append(0.0)
                continue
            hx, _ = step(model, unflat_state(model, mine), torch.full((len(mine),), d))
            landed = torch.cdist(flat_state(model, hx), means).argmin(dim=1)
            target = int(landed.mode().values)
            row.append(target), row_purity.append(float((landed == target).float().mean()))
        table.append(row), purity.append(row_purity)
    adder = all(table[s][d] == (s + d) % base for s in range(base) for d in range(base))
    return {"table": table, "purity": purity, "is_adder": adder,
            "quantisation_agrees": float((quantised == sums).float().mean())}, states, sums, means


def draw_automaton(automaton, path, title):
    """The transition table as a grid: green where it adds, red where it does not; pale where states disagree."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, purity = automaton["table"], automaton["purity"]
    base = len(table)
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    for s in range(base):
        for d in range(base):
            right = table[s][d] == (s + d) % base
            color = ("#58D68D" if right else "#EC7063") if purity[s][d] == 1 else ("#ABEBC6" if right else "#F5B7B1")
            ax.add_patch(plt.Rectangle((d, s), 1, 1, facecolor=color, edgecolor="white"))
            ax.text(d + 0.5, s + 0.5, "?" if table[s][d] is None else table[s][d], ha="center", va="center",
                    fontsize=9)
    ax.set_xlim(0, base), ax.set_ylim(base, 0)
    ax.set_xticks([d + 0.5 for d in range(base)], range(base))
    ax.set_yticks([s + 0.5 for s in range(base)], range(base))
    ax.set_xlabel("next digit"), ax.set_ylabel("state (the running sum the network holds)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------
# 5. The proof: boxes of hidden states, carried through the cell by interval arithmetic
# ----------------------------------------------------------------------------

UNIT = 2.0**-24  # float32's unit roundoff


def gamma(n):
    """The classic bound on the relative rounding error of an n-term float32 dot product."""
    return n * UNIT / (1 - n * UNIT)


class IntervalCell:
    """The model's recurrence on boxes [lo, hi] of whole states (batched: (boxes, state size)), in float64.

    Every bound is widened by what float32 rounding could add (gamma(n) per dot
    product, a few units in the last place per activation and product), so a
    box that holds the real-arithmetic states also holds what the float32 model
    computes, as long as its kernels round as IEEE float32 arithmetic does.
    """

    def __init__(self, model):
        rnn = model.rnn
        self.kind = {torch.nn.RNN: "rnn", torch.nn.GRU: "gru", torch.nn.LSTM: "lstm"}[type(rnn)]
        self.relu = self.kind == "rnn" and rnn.nonlinearity == "relu"
        self.layers, self.hidden = rnn.num_layers, rnn.hidden_size
        self.size = self.layers * self.hidden * (2 if self.kind == "lstm" else 1)  # of a whole (flat) state
        weight = lambda name: getattr(rnn, name).detach().double()  # noqa: E731
        self.w_ih = [weight(f"weight_ih_l{k}") for k in range(self.layers)]
        self.w_hh = [weight(f"weight_hh_l{k}") for k in range(self.layers)]
        self.b_ih = [weight(f"bias_ih_l{k}") for k in range(self.layers)]
        self.b_hh = [weight(f"bias_hh_l{k}") for k in range(self.layers)]
        self.embedding = model.embedding.weight.detach().double()
        self.fc_w, self.fc_b = model.fc.weight.detach().double(), model.fc.bias.detach().double()

    @staticmethod
    def affine(weight, bias, lo, hi):
        """x -> x @ weight.T + bias on a box: exact per coordinate, then widened for float32 rounding."""
        centre, radius = (lo + hi) / 2, (hi - lo) / 2
        mid = centre @ weight.T + bias
        spread = radius @ weight.abs().T
        slack = gamma(weight.shape[1] + 1) * (torch.maximum(lo.abs(), hi.abs()) @ weight.abs().T + bias.abs())
        return mid - spread - slack, mid + spread + slack

    @staticmethod
    def activation(function, lo, hi):
        return function(lo) - 4 * UNIT, function(hi) + 4 * UNIT  # both are monotone

    @staticmethod
    def product(a_lo, a_hi, b_lo, b_hi):
        corners = torch.stack([a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi])
        lo, hi = corners.amin(dim=0), corners.amax(dim=0)
        slack = 2 * UNIT * torch.maximum(lo.abs(), hi.abs())
        return lo - slack, hi + slack

    def split(self, flat):
        """[h of every layer, (c of every layer)] -> per-layer lists."""
        parts = flat.reshape(flat.shape[0], -1, self.layers, self.hidden)
        return [parts[:, 0, k] for k in range(self.layers)], ([parts[:, 1, k] for k in range(self.layers)]
                                                              if self.kind == "lstm" else None)

    CHUNK = 50_000  # boxes carried at once: a million boxes (keys of four digits) would need gigabytes at once

    def step(self, lo, hi, digits):
        """The box that holds every state reachable from a state in [lo, hi] by reading the digit."""
        if len(lo) > self.CHUNK:
            parts = [self.step(lo[i:i + self.CHUNK], hi[i:i + self.CHUNK], digits[i:i + self.CHUNK])
                     for i in range(0, len(lo), self.CHUNK)]
            return torch.cat([lo for lo, _ in parts]), torch.cat([hi for _, hi in parts])
        (h_lo, c_lo), (h_hi, c_hi) = self.split(lo), self.split(hi)
        x_lo = x_hi = self.embedding[digits]
        new_lo, new_hi, newc_lo, newc_hi = [], [], [], []
        for k in range(self.layers):
            gates_x = self.affine(self.w_ih[k], self.b_ih[k], x_lo, x_hi)
            gates_h = self.affine(self.w_hh[k], self.b_hh[k], h_lo[k], h_hi[k])
            if self.kind == "rnn":
                function = torch.relu if self.relu else torch.tanh
                out = self.activation(function, gates_x[0] + gates_h[0], gates_x[1] + gates_h[1])
            elif self.kind == "gru":
                (xr_lo, xz_lo, xn_lo), (xr_hi, xz_hi, xn_hi) = (g.chunk(3, dim=1) for g in gates_x)
                (hr_lo, hz_lo, hn_lo), (hr_hi, hz_hi, hn_hi) = (g.chunk(3, dim=1) for g in gates_h)
                r = self.activation(torch.sigmoid, xr_lo + hr_lo, xr_hi + hr_hi)
                z_lo, z_hi = self.activation(torch.sigmoid, xz_lo + hz_lo, xz_hi + hz_hi)
                rn_lo, rn_hi = self.product(*r, hn_lo, hn_hi)
                n_lo, n_hi = self.activation(torch.tanh, xn_lo + rn_lo, xn_hi + rn_hi)
                # h' = (1 - z) n + z h rises with n and h, and is linear in z: its extremes sit at z's ends
                low = torch.minimum((1 - z_lo) * n_lo + z_lo * h_lo[k], (1 - z_hi) * n_lo + z_hi * h_lo[k])
                high = torch.maximum((1 - z_lo) * n_hi + z_lo * h_hi[k], (1 - z_hi) * n_hi + z_hi * h_hi[k])
                out = (low - 8 * UNIT, high + 8 * UNIT)
            else:
                (i_lo, f_lo, g_lo, o_lo), (i_hi, f_hi, g_hi, o_hi) = ((a + b).chunk(4, dim=1) for a, b in
                                                                      zip(gates_x, gates_h))
                i, f, o = (self.activation(torch.sigmoid, a, b) for a, b in ((i_lo, i_hi), (f_lo, f_hi), (o_lo, o_hi)))
                g = self.activation(torch.tanh, g_lo, g_hi)
                fc_lo, fc_hi = self.product(*f, c_lo[k], c_hi[k])
                ig_lo, ig_hi = self.product(*i, *g)
                c_new = (fc_lo + ig_lo - 4 * UNIT, fc_hi + ig_hi + 4 * UNIT)
                newc_lo.append(c_new[0]), newc_hi.append(c_new[1])
                out = self.product(*o, *self.activation(torch.tanh, *c_new))
            new_lo.append(out[0]), new_hi.append(out[1])
            x_lo, x_hi = out
        return torch.cat(new_lo + newc_lo, dim=1), torch.cat(new_hi + newc_hi, dim=1)

    def readout_margin(self, lo, hi, labels):
        """Per box, the least by which the label's logit beats every other logit anywhere in the box.

        The difference of two logits is affine in h, so it is bounded directly (far tighter than two
        separate logit intervals); float32 may err on each logit by gamma(n) times its absolute terms.
        """
        if len(lo) > self.CHUNK // 10:  # (boxes, classes, hidden) at once
            return torch.cat([self.readout_margin(lo[i:i + self.CHUNK // 10], hi[i:i + self.CHUNK // 10],
                                                  labels[i:i + self.CHUNK // 10])
                              for i in range(0, len(lo), self.CHUNK // 10)])
        start = (self.layers - 1) * self.hidden
        h_lo, h_hi = lo[:, start:start + self.hidden], hi[:, start:start + self.hidden]
        centre, radius, size = (h_lo + h_hi) / 2, (h_hi - h_lo) / 2, torch.maximum(h_lo.abs(), h_hi.abs())
        diff_w = self.fc_w[labels][:, None, :] - self.fc_w[None, :, :]  # (boxes, classes, hidden)
        diff_b = self.fc_b[labels][:, None] - self.fc_b[None, :]
        low = (diff_w @ centre[..., None])[..., 0] - (diff_w.abs() @ radius[..., None])[..., 0] + diff_b
        each = size @ self.fc_w.abs().T + self.fc_b.abs()  # (boxes, classes): a logit's absolute terms
        low = low - gamma(self.hidden + 1) * (each.gather(1, labels[:, None]) + each)
        low[torch.arange(len(labels)), labels] = math.inf
        return low.amin(dim=1)


def clusters_of(states, k):
    """k groups of states by a few rounds of k-means, started from k mutually far states (deterministic)."""
    chosen = [0]
    distance = torch.cdist(states, states[:1])[:, 0]
    while len(chosen) < k and distance.max() > 0:
        chosen.append(int(distance.argmax()))
        distance = torch.minimum(distance, torch.cdist(states, states[chosen[-1]:chosen[-1] + 1])[:, 0])
    k, centres = len(chosen), states[chosen]
    for _ in range(10):
        groups = torch.cdist(states, centres).argmin(dim=1)
        centres = torch.stack([states[groups == j].mean(dim=0) if (groups == j).any() else centres[j]
                               for j in range(k)])
    return torch.cdist(states, centres).argmin(dim=1)


def groups_by_state(states, sums, base, k):
    """The visited states of each automaton state split into up to k groups: (the state of each group,
    [the members of each group])."""
    labels, members = [], []
    for s in range(base):
        mine = states[sums == s]
        groups = clusters_of(mine, k)
        for g in groups.unique():
            labels.append(s), members.append(mine[groups == g])
    return torch.tensor(labels), members


def nearest_of_state(points, centres, labels, wanted):
    """For each point, the nearest centre among those whose label is the point's wanted one."""
    distance = torch.cdist(points, centres)
    distance[labels[None, :] != wanted[:, None]] = math.inf
    return distance.argmin(dim=1)


KEYED_ROUNDS = 30  # rounds the keyed boxes may grow: a few seconds each at k = 3; a network whose boxes
# still grow slowly after these may close later (--keyed_rounds)
# the keyed boxes tried, coarse and quick first: (last digits in the key, boxes a key may have, how far an image
# must be from every box of its key to start another, how far a growing bound overshoots). The finer last try
# holds states of one key that a network keeps apart by an older digit in separate boxes, and widens five times as
# fast, for boxes that creep (it proved reliable seeds 10 and 19; when it fails it adds 20-40 s on one core)
KEYED_TRIES = ((2, 4, 1.0, 0.1), (3, 4, 1.0, 0.1), (3, 8, 0.5, 0.5))
# the deep try, opt-in (--deep), after every other has failed: keys of the last four digits, up to 16 boxes a key,
# for a network that keeps three digits on its slowest loop (reliable seed 44 on `2 8 2 8 ...`, where the boxes of
# three digits grow); 10^5 keys, about a minute a round on one core, so up to an hour; at most 1.5 boxes a key on
# average (10 images a box, each 1 KB twice: 3 GB), where reliable seed 43's boxes multiplied past 20 GB
DEEP_TRY, DEEP_ROUNDS, DEEP_MOST_BOXES = (4, 16, 1.0, 0.1), 60, 150_000


def prove(model, base, states, sums, regions_per_state=(1, 4, 16), rounds=400, keyed_tries=KEYED_TRIES,
          keyed_rounds=KEYED_ROUNDS, deep=False):
    """Try to prove the model right on every sequence; a dict saying whether, and if not, why not.
    Boxes first (they suit saturated units); then, for the plain tanh cell, balls (they suit a map that
    contracts near its states while mixing its units); then boxes keyed by the sum and the last digits
    (they suit a network that remembers its last few digits and forgets older ones); deep: and last the
    deep try."""
    cell, states = IntervalCell(model), states.double()
    attempts = []
    for k in regions_per_state:
        attempts.append(prove_with_boxes(cell, base, states, sums, k, rounds))
        if attempts[-1]["proven"]:
            break
    if not attempts[-1]["proven"] and balls_apply(model):
        for k in regions_per_state:
            attempts.append(prove_with_balls(model, base, states, sums, k, rounds=100))
            if attempts[-1]["proven"]:
                break
    if not attempts[-1]["proven"]:
        for k, modes, apart, widening in keyed_tries:
            attempts.append(prove_with_keyed_boxes(cell, base, k, modes, apart, widening, keyed_rounds))
            if attempts[-1]["proven"]:
                break
    if deep and not attempts[-1]["proven"]:
        attempts.append(prove_deep(cell, base))
    best = dict(attempts[-1])
    if not best["proven"]:  # why the largest try of each kind of region failed
        last_of_each = {a["method"]: a for a in attempts}.values()
        best["reason"] = "; ".join(f"{region_count(a)}: {a['reason']}" for a in last_of_each)
    best["attempts"] = [attempt_summary(a) for a in attempts]
    return best


def prove_deep(cell, base):
    """The deep try (DEEP_TRY), bounded in rounds and boxes."""
    return prove_with_keyed_boxes(cell, base, *DEEP_TRY, DEEP_ROUNDS, most_boxes=DEEP_MOST_BOXES)


def attempt_summary(attempt):
    return {"regions": region_count(attempt), "proven": attempt["proven"], "reason": attempt["reason"]}


def region_count(attempt):
    if attempt.get("method") == "keyed boxes":
        finer = f" (up to {attempt['modes']} a key)" if attempt.get("modes", 4) != 4 else ""
        return f"{attempt['boxes']:,} boxes keyed by the sum and the last {attempt['digits']} digits{finer}"
    return f"{attempt['balls']} balls" if attempt.get("method") == "balls" else f"{attempt['boxes']} boxes"


def widened(bound, need, by=0.1):
    """Widening, for every proof's fixpoint: an upper bound that must grow to `need` overshoots the growth by
    10% (or `by`), so that a contracting map reaches its fixpoint in few rounds (a lower bound:
    widened(-lo, -need))."""
    return torch.where(need > bound, need + by * (need - bound) + 1e-12, bound)


def prove_with_boxes(cell, base, states, sums, k, rounds):
    """Boxes around the visited states (k per automaton state), grown until every digit maps each box into a
    box of the right state: a fixpoint, hence an invariant of every reachable state. Then the read-out."""
    labels, members = groups_by_state(states, sums, base, k)
    lo, hi = torch.stack([m.amin(dim=0) for m in members]), torch.stack([m.amax(dim=0) for m in members])
    nodes = len(labels)
    # edges: from each box and from the initial (zero) state, each digit; the target is fixed once, by the nearest
    # box of the right state to the image's centre
    sources, digits = each_digit_after(nodes, base)
    zero = torch.zeros(base, lo.shape[1], dtype=torch.float64)
    first = cell.step(zero, zero, torch.arange(base))

    def nearest(image_lo, image_hi, wanted):
        return nearest_of_state((image_lo + image_hi) / 2, (lo + hi) / 2, labels, wanted)

    result = {"method": "boxes", "boxes": nodes, "proven": False, "rounds": 0}
    for round_ in range(1, rounds + 1):
        image_lo, image_hi = cell.step(lo[sources], hi[sources], digits)
        if round_ == 1:
            into = torch.cat([nearest(image_lo, image_hi, (labels[sources] + digits) % base),
                              nearest(*first, torch.arange(base))])
        image_lo, image_hi = torch.cat([image_lo, first[0]]), torch.cat([image_hi, first[1]])
        need_lo = lo.clone().scatter_reduce(0, into[:, None].expand_as(image_lo), image_lo, "amin")
        need_hi = hi.clone().scatter_reduce(0, into[:, None].expand_as(image_hi), image_hi, "amax")
        grown = (need_lo < lo) | (need_hi > hi)
        result["rounds"] = round_
        margin = cell.readout_margin(lo, hi, labels)
        if (margin <= 0).any():
            worst = int(margin.argmin())
            result["reason"] = (f"the read-out is not sure of state {int(labels[worst])} everywhere in one of its "
                                f"boxes (widest side {float((hi - lo)[worst].max()):.3g}) in round {round_}")
            return result
        if not grown.any():
            result.update(proven=True, reason=f"fixpoint after {round_} rounds; smallest read-out margin "
                                              f"{float(margin.min()):.3g}",
                          min_margin=float(margin.min()), widest=float((hi - lo).max()))
            return result
        lo, hi = -widened(-lo, -need_lo), widened(hi, need_hi)
    result["reason"] = f"no fixpoint within {rounds} rounds (the boxes kept growing)"
    return result


def prove_with_keyed_boxes(cell, base, k, modes=4, apart=1.0, widening=0.1, rounds=KEYED_ROUNDS, keep_boxes=False,
                           most_boxes=None):
    """Boxes keyed by what the sequence says, not by where its states lie: up to `modes` boxes for each
    (sum so far, last k digits), base^(k+1) keys.

    A trained network keeps its last few digits in its state, so the states of one sum spread over much
    of the cube (boxes per sum fail), while the states that share a sum and their last k digits lie close
    together once the network forgets older digits. Every sequence of k digits is run through the cell
    (a box of width 0, widened for rounding) and starts the box of its key. Then, round after round,
    every box read with every digit d lands in a box of its new key, (s + d, the last k - 1 digits and d):
    the nearest one, grown to hold it; an image farther than `apart` from every box of its key starts
    another box of that key (a network may keep a little of older digits, in a few keys, in saturated
    units). At a fixpoint, with the read-out right everywhere in every box and on every sequence of up to
    k digits, every sequence of every length is answered right (by induction on its length from k).
    widening: how far a bound that must grow overshoots (widened); keep_boxes: a proof's result also holds the
    boxes, as (key, lo, hi), to check them against real states; most_boxes: give up beyond that many (memory)."""
    keys, size = base**k, cell.size
    result = {"method": "keyed boxes", "boxes": base * keys, "digits": k, "modes": modes, "proven": False,
              "rounds": 0}
    lo = hi = torch.zeros(1, size, dtype=torch.float64)  # the initial state
    last = total = torch.zeros(1, dtype=torch.long)  # per sequence: its last digits as a number, its sum
    for length in range(1, k + 1):
        parent, digit = each_digit_after(len(last), base)
        lo, hi = cell.step(lo[parent], hi[parent], digit)
        last, total = last[parent] * base + digit, (total[parent] + digit) % base
        if (cell.readout_margin(lo, hi, total) <= 0).any():
            result["reason"] = f"the read-out is not sure of every sequence of {length} digits"
            return result
    key, box_lo, box_hi = total * keys + last, lo, hi  # per box: its key (sum * keys + last digits) and bounds
    for round_ in range(1, rounds + 1):
        result.update(rounds=round_, boxes=len(key))
        margin = cell.readout_margin(box_lo, box_hi, key // keys)
        if (margin <= 0).any():
            result["reason"] = (f"the read-out is not sure of state {int(key[margin.argmin()] // keys)} everywhere "
                                f"in one of its boxes in round {round_}")
            return result
        source, digit = each_digit_after(len(key), base)
        image_lo, image_hi = cell.step(box_lo[source], box_hi[source], digit)
        target = (key[source] // keys + digit) % base * keys + (key[source] % keys * base + digit) % keys
        into, new = nearest_box_of_key((image_lo + image_hi) / 2, target, (box_lo + box_hi) / 2, key, modes, apart)
        if len(new):  # images that start a box of their own (their key's other images join it next round)
            if most_boxes and len(key) + len(new) > most_boxes:
                result["reason"] = f"more than {most_boxes:,} boxes in round {round_} (images far apart in many keys)"
                return result
            key = torch.cat([key, target[new]])
            box_lo, box_hi = torch.cat([box_lo, image_lo[new]]), torch.cat([box_hi, image_hi[new]])
        placed = into >= 0
        into = into[placed][:, None].expand(-1, size)
        need_lo = box_lo.scatter_reduce(0, into, image_lo[placed], "amin")
        need_hi = box_hi.scatter_reduce(0, into, image_hi[placed], "amax")
        if placed.all() and not len(new) and not ((need_lo < box_lo) | (need_hi > box_hi)).any():
            result.update(proven=True, reason=f"fixpoint after {round_} rounds; smallest read-out margin "
                                              f"{float(margin.min()):.3g}",
                          min_margin=float(margin.min()), widest=float((box_hi - box_lo).max()))
            if keep_boxes:
                result["kept"] = (key, box_lo, box_hi)
            return result
        box_lo, box_hi = -widened(-box_lo, -need_lo, widening), widened(box_hi, need_hi, widening)
    result["reason"] = f"no fixpoint within {rounds} rounds (the boxes kept growing)"
    return result


def nearest_box_of_key(points, wanted, centres, key, modes, apart):
    """For each point, the nearest box (by centre) among those of its wanted key, or -1 where it is farther
    than `apart` from all of them and the key has fewer than `modes` boxes; then (the boxes, the points that
    start a new box: one per such key, numbered after the existing boxes)."""
    order = key.argsort(stable=True)
    count = torch.bincount(key, minlength=int(max(key.max(), wanted.max())) + 1)
    rank = torch.arange(len(key)) - (count.cumsum(0) - count)[key[order]]
    table = torch.full((len(count), modes), -1, dtype=torch.long)  # key -> its boxes
    table[key[order], rank] = order
    candidates = table[wanted]
    distance = torch.full(candidates.shape, math.inf, dtype=torch.float64)
    point, slot = (candidates >= 0).nonzero(as_tuple=True)
    distance[point, slot] = (points[point] - centres[candidates[point, slot]]).norm(dim=1)
    nearest = distance.min(dim=1)
    into = candidates.gather(1, nearest.indices[:, None])[:, 0]
    lonely = (nearest.values > apart) & ((candidates >= 0).sum(dim=1) < modes)
    into[lonely] = -1
    lonely_keys, first = torch.unique(wanted[lonely], return_inverse=True)
    index = lonely.nonzero()[:, 0]
    new = index[torch.full((len(lonely_keys),), len(index)).scatter_reduce(0, first, torch.arange(len(index)), "amin")]
    into[new] = len(key) + torch.arange(len(new))
    return into, new


def tanh_cell_stretch(w, pre, radius):
    """An upper bound on the Lipschitz constant (Euclidean) of h -> tanh(w h + u) on the ball of the given
    radius around a centre whose pre-activation w c + u is pre (..., hidden): the spectral norm of w with
    each row scaled by tanh's largest slope over the range that row's pre-activation can take."""
    reach = radius[..., None] * w.norm(dim=1)
    slope = 1 - torch.tanh(torch.clamp(pre.abs() - reach, min=0)) ** 2
    return torch.linalg.matrix_norm(slope[..., None] * w, ord=2) * (1 + 1e-9)


def tanh_cell_parts(model, base):
    """One layer of the plain tanh cell in float64, h' = tanh(w h + u[digit]): (w, u, and the parts of u,
    (embeddings, w_ih, b_ih, b_hh), which the float32 rounding bound needs)."""
    rnn = model.rnn
    weight = lambda name: getattr(rnn, name).detach().double()  # noqa: E731
    w, w_ih, b_ih, b_hh = weight("weight_hh_l0"), weight("weight_ih_l0"), weight("bias_ih_l0"), weight("bias_hh_l0")
    x = model.embedding.weight.detach().double()[:base]
    return w, x @ w_ih.T + b_ih + b_hh, (x, w_ih, b_ih, b_hh)  # u: (digit, hidden), each digit's share


def balls_apply(model):
    """The ball proof is written for one layer of the plain tanh cell."""
    rnn = model.rnn
    return isinstance(rnn, torch.nn.RNN) and rnn.nonlinearity == "tanh" and rnn.num_layers == 1


def prove_with_balls(model, base, states, sums, k=1, rounds=100):
    """The proof for one layer of the plain tanh cell, in Euclidean balls (k per automaton state).

    Around the mean c of a group of visited states, a ball of radius r. For a digit d, the cell
    f(h) = tanh(W h + u_d) takes every point of the ball to within ||f(c) - c'|| + L r of the centre c' it
    is sent to (mean value theorem), where L = ||diag(g) W||_2 and g bounds tanh' over the ball's
    pre-activations. If that, plus what float32 rounding can add in one step, is at most r' for every ball
    and digit, if the first digit lands every sequence in a ball of its sum, and the read-out is right
    everywhere in every ball, then every sequence of every length ends in a ball of its sum. Boxes fail
    where the cell mixes its units (their corners grow every step); a ball only asks that the map
    contracts near the states the network uses.
    """
    if not balls_apply(model):
        return {"method": "balls", "balls": 0, "proven": False,
                "reason": "balls are written for one layer of the tanh cell"}
    w, u, (x, w_ih, b_ih, b_hh) = tanh_cell_parts(model, base)
    n, m = w.shape[1], w_ih.shape[1]
    # float32: a pre-activation is a dot product of n + m terms and two biases, with |h| <= 1 (tanh states);
    # tanh passes its input's error on with slope <= 1 and adds a few units in the last place of its own
    slack = (gamma(n + m + 2) * (w.abs().sum(dim=1) + x.abs() @ w_ih.abs().T + b_ih.abs() + b_hh.abs())
             + 4 * UNIT).norm(dim=1)  # (digit,)
    labels, members = groups_by_state(states, sums, base, k)
    centres = torch.stack([m.mean(dim=0) for m in members])

    def nearest(points, wanted):
        return nearest_of_state(points, centres, labels, wanted)

    pre = (centres @ w.T)[:, None, :] + u[None, :, :]  # (ball, digit, hidden): the centres' pre-activations
    image = torch.tanh(pre)
    into = nearest(image.reshape(-1, n), ((labels[:, None] + torch.arange(base)) % base).flatten()).view(-1, base)
    miss = (image - centres[into]).norm(dim=2)  # how far each centre's image is from its ball's centre
    start = nearest(torch.tanh(u), torch.arange(base))  # from the initial (zero) state, digit d
    first = (torch.tanh(u) - centres[start]).norm(dim=1) + slack
    entry = torch.zeros(len(labels), dtype=torch.float64).scatter_reduce(0, start, first, "amax")  # per ball
    radius = entry.clone()
    fc_w, fc_b = model.fc.weight.detach().double(), model.fc.bias.detach().double()
    diff_w = fc_w[labels][:, None, :] - fc_w[None, :, :]  # (ball, class, hidden)
    gap_at_centre = (diff_w @ centres[..., None])[..., 0] + fc_b[labels][:, None] - fc_b[None, :]
    rounding = 2 * gamma(n + 1) * float(fc_w.abs().sum(dim=1).max() + fc_b.abs().max())
    result = {"method": "balls", "balls": len(labels), "proven": False, "rounds": 0}
    for round_ in range(1, rounds + 1):
        result["rounds"] = round_
        gap = gap_at_centre - radius[:, None] * diff_w.norm(dim=2) - rounding
        gap[torch.arange(len(labels)), labels] = math.inf
        margin = gap.amin(dim=1)
        if (margin <= 0).any():
            worst = int(margin.argmin())
            result["reason"] = (f"the read-out is not sure of state {int(labels[worst])} everywhere in one of "
                                f"its balls (radius {float(radius[worst]):.3g}) in round {round_}")
            return result
        need = miss + tanh_cell_stretch(w, pre, radius[:, None]) * radius[:, None] + slack[None, :]
        needed = torch.zeros_like(radius).scatter_reduce(0, into.flatten(), need.flatten(), "amax")
        needed = torch.maximum(needed, entry)
        if (needed <= radius).all():
            result.update(proven=True, reason=f"fixpoint after {round_} rounds; smallest read-out margin "
                                              f"{float(margin.min()):.3g}; radii up to {float(radius.max()):.3g}",
                          min_margin=float(margin.min()), widest=float(2 * radius.max()))
            return result
        radius = widened(radius, needed)
    result["reason"] = f"no fixpoint within {rounds} rounds (the balls kept growing)"
    return result


@torch.inference_mode()
def stretch(model, base, states, count=64, depth=8, seed=0):
    """Whether one-step regions can close, measured: for one layer of the plain tanh cell, at visited states,
    how much one digit's step stretches distances (the Jacobian's spectral norm) and boxes (its largest
    absolute row sum), and after how many digits every sampled product of steps contracts (norm < 1).
    A ball proof needs the first below 1, a box proof the second, near the states that share a region
    (--stretch_penalty trains the second down). None for other cells."""
    if not balls_apply(model):
        return None
    w, u, _ = tanh_cell_parts(model, base)
    generator = torch.Generator().manual_seed(seed)
    h = states.double()[torch.randint(0, len(states), (count,), generator=generator)]
    product, contracts_from = torch.eye(w.shape[0], dtype=torch.float64).expand(count, -1, -1), None
    for k in range(1, depth + 1):
        h = torch.tanh(h @ w.T + u[torch.randint(0, base, (count,), generator=generator)])
        jacobian = (1 - h**2)[:, :, None] * w
        product = jacobian @ product
        if k == 1:
            norms, rows = torch.linalg.matrix_norm(jacobian, ord=2), jacobian.abs().sum(dim=2).amax(dim=1)
        if contracts_from is None and float(torch.linalg.matrix_norm(product, ord=2).max()) < 1:
            contracts_from = k
    return {"step_median": float(norms.median()), "step_max": float(norms.max()), "box_max": float(rows.max()),
            "contracts_from": contracts_from, "paths": count, "depth": depth}


def necklaces(base, longest):
    """Every periodic input of up to `longest` digits once: the words that are not a repetition of a shorter
    one, each as the least of its rotations (0; 0 1; 0 0 1; ...)."""
    for n in range(1, longest + 1):
        for word in itertools.product(range(base), repeat=n):
            if all(word[i:] + word[:i] > word for i in range(1, n)):
                yield word


@torch.inference_mode()
def slowest_loop(model, base, longest=3, settle=60, seed=0):
    """The periodic input on which the network forgets slowest, measured: for one layer of the plain tanh cell,
    every word of up to `longest` digits read again and again settles into a loop of states (per coset of the
    sums it visits, from the state after one digit and after five random ones); around it, a small box shrinks
    each lap by the spectral radius of the product of the steps' absolute Jacobians. Its root per digit is how
    much the boxes of a proof must shrink a step there; near 1 they barely do, and a network that needs many
    steps to forget on some input leaves the keyed boxes no room (README section 12). None for other cells."""
    if not balls_apply(model):
        return None
    w, u, _ = tanh_cell_parts(model, base)
    step = lambda h, d: torch.tanh(h @ w.T + u[d])  # noqa: E731
    head = torch.randint(0, base, (base, 5), generator=torch.Generator().manual_seed(seed))
    head[:, -1] = (torch.arange(base) - head[:, :-1].sum(dim=1)) % base  # head s sums to s
    after_head = torch.zeros(base, w.shape[0], dtype=torch.float64)
    for t in range(head.shape[1]):
        after_head = step(after_head, head[:, t])
    worst = None
    for word in necklaces(base, longest):
        cosets = math.gcd(sum(word), base)
        lap = list(word) * (base // cosets)  # until the sum comes back
        h = torch.cat([torch.tanh(u[:cosets]), after_head[:cosets]])
        for _ in range(-(-settle // len(lap))):
            for d in lap:
                h = step(h, d)
        h = h[torch.cat([torch.ones(cosets, dtype=torch.bool),  # both starts of a coset in one loop: once
                         (h[cosets:] - h[:cosets]).abs().amax(dim=1) > 1e-9])]
        product = torch.eye(w.shape[0], dtype=torch.float64).expand(len(h), -1, -1)
        for d in lap:
            h = step(h, d)
            product = ((1 - h**2)[:, :, None] * w.abs()) @ product
        if worst is not None and float(product.sum(dim=2).max()) ** (1 / len(lap)) <= worst["per_digit"]:
            continue  # its largest row sum bounds the spectral radius: not the slowest
        per_digit = float(torch.linalg.eigvals(product).abs().max()) ** (1 / len(lap))
        if worst is None or per_digit > worst["per_digit"]:
            worst = {"word": list(word), "per_digit": per_digit, "lap": len(lap)}
    return worst


# ----------------------------------------------------------------------------
# 6. The audit, and its verdict
# ----------------------------------------------------------------------------


def audit(model, config, beam_sequences=SEARCHED, max_length=1000, regions_per_state=(1, 4, 16),
          gradient_sequences=SEARCHED, keyed_rounds=KEYED_ROUNDS, deep=False):
    """Families, both searches, automaton and proof of one model; a JSON-ready dict whose 'verdict' sums it up."""
    torch.set_num_threads(1)  # as train(): fastest for a model this small, and never oversubscribes a busy machine
    start = time.perf_counter()
    model = model.eval().float()
    base = config["max_number"] + 1
    families = judge_families(model, base)
    found, tried = search(model, base, max_length=max_length, max_sequences=beam_sequences)
    gradient_found, gradient_tried = gradient_search(model, base, max_sequences=gradient_sequences)
    gradient = {"found": gradient_found, "searched": gradient_tried}
    candidates = [found, gradient_found] + [f["shortest_wrong"] for f in families]
    candidates = [c for c in candidates if c is not None]
    counterexample = None
    if candidates:
        shortest = shorten(model, min(candidates, key=len), base)
        counterexample = {"sequence": shortest, "answer": answer(model, shortest), "truth": sum(shortest) % base}
    automaton, states, sums, _ = extract_automaton(model, base)
    proof = {"proven": False, "reason": "a counterexample exists"} if counterexample else prove(
        model, base, states, sums, regions_per_state, keyed_rounds=keyed_rounds, deep=deep)
    result = {"families": families, "searched": tried, "beam_found": found, "gradient_search": gradient,
              "counterexample": counterexample, "automaton": automaton, "proof": proof,
              "stretch": stretch(model, base, states), "slowest_loop": slowest_loop(model, base),
              "seconds": round(time.perf_counter() - start, 2)}
    result["verdict"] = verdict(result)
    return result


# Bumped when the audit judges differently (1: boxes only; 2: balls too; 3: the gradient search too, and both
# searches stop after a count of sequences instead of 20 s each; 4: boxes keyed by the last digits too; 5: and a
# finer try of them last; 6: that try widens faster): a record judged by an older audit is judged again from its
# kept weights by `study.py exact --reaudit`, without training.
VERSION = 6
PROOF_ONLY_SINCE = 3  # what changed since this version is the proof alone: families and searches stay as judged
PROOF_KEPT_SINCE = 4  # and since this one, only tries after every earlier one failed: a proof found then stands


def summary(result):
    """What a sweep record keeps of an audit: per family the count wrong, and everything else but the
    automaton's purity table."""
    return {**{k: v for k, v in result.items() if k != "automaton"}, "version": VERSION,
            "automaton": {k: v for k, v in result["automaton"].items() if k != "purity"}}


def recorded_model(record, weights_path):
    """The model of a sweep record, with the final weights kept beside it."""
    import train_cls_rnn

    model = train_cls_rnn.build_model(record["flags"])
    model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return model


def reaudit(record, weights_path):
    """A sweep record judged again by this audit, from the final weights kept beside it."""
    model = recorded_model(record, weights_path)
    judged = record["audit"]
    if judged.get("version", 1) < PROOF_ONLY_SINCE:
        return {**record, "audit": summary(audit(model, record["flags"]))}
    torch.set_num_threads(1)
    model, base = model.eval().float(), record["flags"]["max_number"] + 1
    # the families and both searches are deterministic and unchanged since: only the proof is tried again
    if judged["counterexample"] is None and judged["version"] < VERSION and not (
            judged["proof"]["proven"] and judged["version"] >= PROOF_KEPT_SINCE):
        _, states, sums, _ = extract_automaton(model, base)
        judged = {**judged, "proof": prove(model, base, states, sums)}
        judged["verdict"] = verdict(judged)
    if "slowest_loop" not in judged:  # a measure added after version 6, without judging differently
        judged = {**judged, "slowest_loop": slowest_loop(model, base)}
    return {**record, "audit": {**judged, "version": VERSION}}


def deepened(record, weights_path):
    """A record with no counterexample and no proof, judged again by the deep try alone (every other try is
    recorded as failed); the proof then says it was tried ("deep"), proven or not."""
    torch.set_num_threads(1)
    base, proof = record["flags"]["max_number"] + 1, record["audit"]["proof"]
    attempt = prove_deep(IntervalCell(recorded_model(record, weights_path).eval().float()), base)
    attempts = proof.get("attempts", []) + [attempt_summary(attempt)]
    proof = {**attempt, "attempts": attempts} if attempt["proven"] else {
        **proof, "attempts": attempts, "reason": f"{proof['reason']}; {region_count(attempt)}: {attempt['reason']}"}
    judged = {**record["audit"], "proof": {**proof, "deep": True}}
    return {**record, "audit": {**judged, "verdict": verdict(judged)}}


def deep_pending(record):
    """Whether deepened() has anything to add: no counterexample, not proven, the deep try not yet made."""
    judged = record["audit"]
    return judged["counterexample"] is None and not judged["proof"]["proven"] and not judged["proof"].get("deep")


def stale(record):
    """Whether reaudit() has anything to add to a record: judged by an older audit, or without a measure."""
    return record["audit"].get("version", 1) < VERSION or "slowest_loop" not in record["audit"]


def train_and_audit(name, seed, flags):
    """Sweep runner: train one run, score it, audit it; its final weights travel with the record
    (written beside it as seed<N>.pt), so that a better audit can judge it again without training."""
    import io

    from rnn_tutorial import scoring

    result = scoring.train_run(name, seed, flags)
    record = scoring.run_record(name, seed, result)
    record["audit"] = summary(audit(result["model"], result["config"]))
    weights = io.BytesIO()
    torch.save(result["model"].state_dict(), weights)
    record["attachments"] = {".pt": weights.getvalue()}
    return record


def verdict(result):
    """The last line of the audit: a counterexample, or none found, and whether that is proven for all lengths."""
    found = result["counterexample"]
    if found:
        return f"counterexample {run_length(found['sequence'])} -> {found['answer']} (truth {found['truth']})"
    sequences = (result["searched"] + result["gradient_search"]["searched"]
                 + sum(f["prefixes"] for f in result["families"]))
    proof = result["proof"]
    return (f"no counterexample ({sequences:,} sequences searched); "
            + ("proven for every length" if proof["proven"] else f"not proven: {proof['reason']}"))


def report(result):
    """The audit as lines of text: families, search, automaton, proof."""
    lines = ["| family | what | prefixes judged | wrong | shortest wrong |", "|---|---|---|---|---|"]
    for f in result["families"]:
        shortest = "-" if f["shortest_wrong"] is None else shown(f["shortest_wrong"])
        lines.append(f"| {f['family']} | {f['what']} | {f['prefixes']:,} | {f['wrong']:,} | {shortest} |")
    automaton = result["automaton"]
    wrong_cells = [(s, d, t) for s, row in enumerate(automaton["table"]) for d, t in enumerate(row)
                   if t != (s + d) % len(row)]
    gradient = result["gradient_search"]
    lines += ["", f"search: {result['searched']:,} sequences (every one of up to 5 digits, then the beam): "
              + ("none wrong" if result["beam_found"] is None else f"wrong on {shown(result['beam_found'])}"),
              f"gradient search: {gradient['searched']:,} sequences (prefixes of whole sequences changed a digit at "
              "a time): " + ("none wrong" if gradient["found"] is None else f"wrong on {shown(gradient['found'])}"),
              f"automaton: states quantised to the nearest class mean agree with the true sum on "
              f"{100 * automaton['quantisation_agrees']:.1f}% of visited states; "
              + ("every transition is s -> (s + d) mod 10" if automaton["is_adder"] else
                 f"{len(wrong_cells)} transitions are not s -> (s + d) mod 10, e.g. "
                 + ", ".join(f"{s} --{d}--> {t}" for s, d, t in wrong_cells[:4]))]
    proof = result["proof"]
    if "attempts" in proof:
        lines.append("proof: " + "; ".join(f"{a['regions']}: " + ("proven" if a["proven"] else a["reason"])
                                           for a in proof["attempts"]))
    grown = result.get("stretch")
    if grown:
        lines.append(f"one step at the visited states stretches distances by up to {grown['step_max']:.3g} (median "
                     f"{grown['step_median']:.3g}) and boxes by up to {grown['box_max']:.3g}; "
                     + ("some product of {depth} steps still stretches" if not grown["contracts_from"] else
                        "every step on {paths} random paths contracts" if grown["contracts_from"] == 1 else
                        "every product of {contracts_from} steps on {paths} random paths contracts").format(**grown))
    loop = result.get("slowest_loop")
    if loop:
        change = "shrinks" if loop["per_digit"] < 1 else "grows"
        lines.append(f"slowest loop: {' '.join(map(str, loop['word']))} read again and again; a small box around "
                     f"the states it settles into {change} by a factor {loop['per_digit']:.3g} a digit")
    lines.append(f"audit took {result['seconds']:.1f} s")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description="Audit a trained model: families, counterexample search, automaton, "
                                            "and a proof for every length where one can be had.")
    p.add_argument("--save_dir", default=None, help="a run folder, or a folder of runs (its newest); "
                   "default: the run under ./output that finished last (as predict_cls_rnn.py)")
    p.add_argument("--checkpoint", help="a specific model_step_N.pt (its folder holds the run's args.pt)")
    p.add_argument("--beam_sequences", type=int, default=SEARCHED, help="sequences the beam search tries")
    p.add_argument("--gradient_sequences", type=int, default=SEARCHED,
                   help="sequences (prefixes) the gradient search judges")
    p.add_argument("--max_length", type=int, default=1000, help="longest sequence the beam search tries")
    p.add_argument("--keyed_rounds", type=int, default=KEYED_ROUNDS,
                   help="rounds the proof's keyed boxes may grow before it says no fixpoint")
    p.add_argument("--deep", action="store_true", help="if the other tries fail, also try boxes keyed by the "
                   "last four digits (about a minute a round on one core, up to an hour)")
    p.add_argument("--figure", help="draw the automaton's transition table to this PNG")
    p.add_argument("--json", help="write the whole audit to this file")
    args = p.parse_args(argv)
    if min(args.beam_sequences, args.gradient_sequences) < 0 or args.max_length < 6 or args.keyed_rounds < 1:
        p.error("--beam_sequences and --gradient_sequences must be zero or positive, --max_length at least 6 and "
                "--keyed_rounds at least 1")

    import predict_cls_rnn
    from rnn_tutorial.runs import CheckpointError

    try:
        model, config, checkpoint = predict_cls_rnn.load_model(args)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(predict_cls_rnn.describe(config, checkpoint))
    result = audit(model, config, args.beam_sequences, args.max_length, gradient_sequences=args.gradient_sequences,
                   keyed_rounds=args.keyed_rounds, deep=args.deep)
    print(report(result))
    if args.figure:
        draw_automaton(result["automaton"], args.figure, f"{config.get('run_name', '?')}: where each digit "
                                                         "takes each state")
        print(f"wrote {args.figure}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": checkpoint, **result}, f, indent=1)
        print(f"wrote {args.json}")
    print(f"verdict: {result['verdict']}")
    return 1 if result["counterexample"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
