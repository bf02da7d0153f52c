"""The searches for the shortest wrong sequence: the beam (beam.py, shared with training), a gradient
search unlike it (which no recipe trains on), and a greedy shortening of what either finds.
"""

import math

import torch

from rnn_tutorial.audit.families import first_wrong_prefix
from rnn_tutorial.beam import SEARCHED, beam_levels, right_margin


@torch.inference_mode()
def answer(model, sequence):
    """The model's answer to one sequence, computed as the predictor does (one packed forward pass)."""
    return int(model(torch.tensor([sequence]), torch.tensor([len(sequence)])).argmax())


def search(model, base, exhaustive_length=5, beam=2048, max_length=1000, max_sequences=SEARCHED):
    """The shortest wrong sequence found by beam_levels, or None; and how many sequences were tried."""
    tried = 0
    for margin, sequence in beam_levels(model, base, exhaustive_length, beam, max_length, max_sequences):
        tried += len(margin)
        if (margin <= 0).any():
            return sequence(int(margin.argmin())).tolist(), tried
    return None, tried


@torch.inference_mode()
def margins_at_every_prefix(model, digits, base):
    """(batch, time): how much the right answer wins by after each prefix (<= 0: the model is wrong there)."""
    return right_margin(model.prefix_logits(digits), (digits.cumsum(dim=1) % base)[..., None], dim=2)


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
                logits = model.fc(model.run(onehot @ table)[0][:, -1])  # the digits as one-hot rows: a gradient
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
