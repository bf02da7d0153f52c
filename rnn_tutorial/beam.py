"""The beam search for the sequences a model answers right by the least.

Two users: training's --hard_share (hardening.HardSequences mixes what it finds
into the batches) and the audit's counterexample search (audit/searches.py).
It lives apart from the audit so that the training script can use it without
loading the verifier. It runs the model one digit at a time through the
model's step_each_digit and each_digit_logits (every next digit of every
sequence kept, model_forms.py) and step, so it works for every cell type.
"""

import math

import torch

SEARCHED = 10_000_000  # sequences a search tries by default: about 10 s for a 128-unit model on one core


def each_digit_after(count, base):
    """Every one of count things followed by every digit: (the thing's index, the digit), count * base each."""
    return torch.arange(count).repeat_interleave(base), torch.arange(base).repeat(count)


def right_margin(logits, truth, dim):
    """How much the right answer's logit beats every other along dim (<= 0: wrong); truth has size 1 there."""
    return logits.gather(dim, truth).squeeze(dim) - logits.scatter(dim, truth, -math.inf).amax(dim=dim)


def select(model, state, index):
    """The states of the sequences index picks, in that order."""
    return model.state_from_parts([part[:, index] for part in model.state_parts(state)])


@torch.inference_mode()
def beam_levels(model, base, exhaustive_length=5, beam=2048, max_length=1000, max_sequences=SEARCHED):
    """Sequences one digit longer at each level: yields (margins, sequence) per level, where margins[i]
    is how much the right answer of the i-th sequence wins by (<= 0: wrong) and sequence(i) its digits as a
    tensor (given a tensor of indices, one row of digits for each).

    Every sequence of up to exhaustive_length digits is tried; then the beam keeps the `beam` sequences
    whose right answer wins by the least (the same number for each right answer, so no state is left
    out) and tries every next digit, up to max_length digits or until max_sequences have been tried (a
    count, not a time, so that the same model gets the same verdict on any machine).
    """
    tried = 0
    state, sums, levels = None, torch.zeros(1, dtype=torch.long), []  # levels: (parent of each, its last digit)

    def walk_back(level, index):  # follow the parents back to the first digit: of one index, or of a tensor of them
        digits, index = [], torch.as_tensor(index)
        for parents, last in reversed(levels[: level + 1]):
            digits.append(last[index])
            index = parents[index]
        return torch.stack(digits[::-1], dim=-1)

    for length in range(1, max_length + 1):
        parents, digits = each_digit_after(len(sums), base)  # the children, in step_each_digit's order
        pruned = length >= exhaustive_length  # only the beam's states go on: the others are not kept
        if pruned:
            logits = model.each_digit_logits(state, base)
        else:
            state, logits = model.step_each_digit(state, base)
        sums = (sums[parents] + digits) % base
        margin = right_margin(logits, sums[:, None], dim=1)
        levels.append((parents, digits))
        tried += len(margin)
        yield margin, (lambda index, level=length - 1: walk_back(level, index))
        if pruned:
            if tried >= max_sequences:
                return
            keep = torch.cat([idx[margin[idx].argsort()[: beam // base]]
                              for s in range(base) if len(idx := (sums == s).nonzero()[:, 0])])
            state = model.step(None if state is None else select(model, state, parents[keep]), digits[keep])[0]
            sums = sums[keep]
            levels[-1] = (parents[keep], digits[keep])
