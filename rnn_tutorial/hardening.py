"""Training beyond the article: what the recipes of docs/audit.md add to make a network right on
every kind of sequence, not only on random ones. Each is an opt-in flag of train_cls_rnn.py, off by
default; they live here, not in the script, because the article trains with none of them.

  add_flags           the recipes' flags, as their own group of the script's parser
  Recipe              the one object train() calls: for its batch, its loss, what it logs and after
                        each evaluation; with every recipe flag off it changes nothing
  loss                the training loss with the four below, as the flags set them, and its
                        cross-entropy part
  noisy_logits        --state_noise: the logits of the forward pass with Gaussian noise on the hidden
                        state after every digit (the model's noisy_states, model_forms.py)
  box_stretch         --stretch_penalty: once the task is found, a penalty on how much one digit's step
                        can widen a box around the states the cell reaches (one tanh layer)
  forgetting          --forget_penalty: once the task is found, a penalty on how far apart the states
  partners              after two sequences with the same sum and the same last two digits end
  PenaltyWeight       either penalty's weight, rising while the model stays right on every evaluation
                        sequence
  prefix_targets      --loss_at every_digit: the right answer after every digit, each prefix scored
                        against its own sum
  HardSequences       --hard_share: once the task is found, part of every batch is the sequences of
                      the trained lengths that the model answers right by the least (or wrong), found
                      by the beam search (beam.py, the audit's too) on the model as it is at each evaluation
"""

import copy
import math

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnn_tutorial import beam


def add_flags(parser):
    """The recipes' flags, every one off by default (the article's training)."""
    group = parser.add_argument_group("recipes (beyond the article; rnn_tutorial/docs/audit.md)")
    group.add_argument("--state_noise", type=float, default=0.0, help="std of Gaussian noise added to the hidden "
                       "state after every digit in training (0 = none, the article's)")
    group.add_argument("--state_noise_from", choices=["start", "found"], default="start",
                       help="the noise from step 1, or from the first evaluation >= 99%% on")
    group.add_argument("--loss_at", choices=["end", "every_digit"], default="end",
                       help="the loss on the answer after the last digit (the article's), or after every digit, "
                            "each prefix scored against its own sum")
    group.add_argument("--hard_share", type=float, default=0.0,
                       help="0..1: once an evaluation reaches 99%%, this share of every batch is the hardest "
                            "sequences a beam search finds at each evaluation (0 = none)")
    group.add_argument("--hard_max_len", type=int, default=0, help="longest hard sequence (0 = max_seq_len)")
    group.add_argument("--stretch_penalty", type=float, default=0.0,
                       help="once an evaluation reaches 99%%, a penalty on how much one digit's step can widen a box "
                            "around the state, its weight rising towards this while the model stays right (one-layer "
                            "rnn only; 0 = none)")
    group.add_argument("--forget_penalty", type=float, default=0.0,
                       help="once an evaluation reaches 99%%, a penalty on how far apart the states after two "
                            "sequences with the same sum and last two digits end, its weight rising towards this "
                            "while the model stays right (0 = none)")
    group.add_argument("--harden_by", type=int, default=0,
                       help="start what waits for 99%% (noise once found, hard sequences, penalty) at the first "
                            "evaluation at or after this step even if the task is not found (0 = only once found)")
    group.add_argument("--restart_by", type=int, default=0,
                       help="start again from new weights (and the schedule over the steps left) at the first "
                            "evaluation at or after this step if none has reached 99%% (0 = never)")


class Recipe:
    """The recipes' additions to one run, behind the four calls train() makes: batch() before each step,
    loss() for it when changes_loss, logged() beside the logged loss, after_eval() after each evaluation.

    What waits for the task to be found (an evaluation at 99%, or --harden_by) starts there: the noise
    with --state_noise_from found, both penalties' weights, the hard sequences. With every recipe flag at
    its default, batch() returns the batch as it is, changes_loss is false, logged() adds nothing and
    after_eval() never asks for a restart: the article's loop, step for step.
    """

    def __init__(self, args):
        self.args = args
        self.found_at = None  # the step of the first evaluation at 99%: the hardening starts there
        self.restarted_at = None  # --restart_by: once at most
        self.noise = args.state_noise if args.state_noise_from == "start" else 0.0
        self.stretch = PenaltyWeight(args.stretch_penalty, args.total_steps, args.eval_every)
        self.forget = PenaltyWeight(args.forget_penalty, args.total_steps, args.eval_every)
        self.partners = torch.Generator().manual_seed(args.seed)  # --forget_penalty's: the data's stays the article's
        self.hard = HardSequences(args.hard_share, args.batch_size, args.min_seq_len,
                                  args.hard_max_len or args.max_seq_len, args.max_number, args.seed)

    def batch(self, inputs, lengths, targets):
        """--hard_share: part of the batch replaced by hard sequences, once found."""
        return self.hard.mix(inputs, lengths, targets)

    @property
    def changes_loss(self):
        return bool(self.noise or self.stretch.weight or self.forget.weight or self.args.loss_at != "end")

    def loss(self, model, criterion, inputs, lengths, targets):
        """(the loss with the recipes at this step, its cross-entropy part)."""
        return loss(model, criterion, inputs, lengths, targets, self.noise, self.args, self.stretch.weight,
                    self.forget.weight, self.partners)

    def logged(self, loss, cross_entropy):
        """The penalties, logged apart from the cross-entropy since they grow as their weights rise."""
        return {"penalties": (loss - cross_entropy).item()} if self.args.stretch_penalty or self.args.forget_penalty \
            else {}

    def after_eval(self, step, accuracy, model):
        """Found, harden, and whether the run must start again from new weights now (--restart_by)."""
        args = self.args
        late = args.harden_by and step >= args.harden_by  # --harden_by: not found yet, harden it anyway
        if self.found_at is None and (accuracy >= 0.99 or late):
            self.found_at, self.noise = step, args.state_noise
        restart = bool(args.restart_by and self.found_at is None and self.restarted_at is None
                       and step >= args.restart_by)
        if restart:
            self.restarted_at = step
        self.stretch.update(accuracy, self.found_at)
        self.forget.update(accuracy, self.found_at)
        if self.found_at is not None and args.hard_share:
            self.hard.refresh(model)
        return restart


def noisy_logits(model, x, seq_lengths, noise, every_digit=False):
    """--state_noise: the logits of the forward pass with Gaussian noise on the hidden state after every digit (the
    model's noisy_states), so that a network whose states drift is punished for it: after the last digit, (batch,
    classes), or after each digit, (batch, time, classes), zero past each sequence's end."""
    final, carried, _ = model.noisy_states(x, seq_lengths, noise)
    if not every_digit:
        return model.fc(final)
    return pad_packed_sequence(carried._replace(data=model.fc(carried.data)), batch_first=True, total_length=x.shape[1])[0]


def box_stretch(model, outputs):
    """--stretch_penalty: how much one digit's step can widen a box around each state the cell reached, outputs
    (states, hidden): the cell's output at every running digit.

    For h' = tanh(W h + u), unit i of h' moves by at most (1 - h'_i^2) * sum_j |W_ij| per unit of
    box width (tanh's slope there times its row of W): a saturated unit (|h'| near 1) widens nothing.
    The mean over the states of the sum over units of its square. A network whose every unit
    stays below 1 forgets old digits one step at a time, which is what lets the audit's boxes close.
    """
    rows = model.rnn.weight_hh_l0.abs().sum(dim=1)
    slope = 1 - outputs * outputs
    return (slope * slope).mv(rows * rows).mean()  # sum_i (slope_i * row_i)^2 per state, as one product


def partners(inputs, lengths, pad, generator, keep=2):
    """--forget_penalty: for every sequence longer than `keep` digits, a partner with the same last `keep` digits
    after an older part of the same length and the same sum: another sequence's digits at those places (so
    that runs and favoured digits occur in it as in the data; random digits past that one's end), its first
    digit changed to give the sum. Returns (the sequences that have a partner, their partners, their lengths).

        sequence  3 3 7 | 1 4      older part of length 3, sum 3; the last two digits kept
        other     5 5 5 5 0 ...    its first three digits, 5 5 5 (sum 5): the first becomes 3
        partner   3 5 5 | 1 4      same sum, same last two digits, another past
    """
    rows, digits = (lengths > keep).nonzero()[:, 0], inputs.cpu()
    own, older = digits[rows], (lengths[rows] - keep)[:, None]
    other = digits[rows[torch.randperm(len(rows), generator=generator)]]
    other = torch.where(other == pad, torch.randint(pad, other.shape, generator=generator), other)
    place = torch.arange(inputs.shape[1])[None, :]
    before = place < older
    partner = torch.where(before, other, own)
    missing = ((own * before).sum(dim=1) - (partner * before).sum(dim=1)) % pad  # what the sums differ by
    partner[:, 0] = (partner[:, 0] + missing) % pad
    return own.to(inputs.device), partner.to(inputs.device), lengths[rows]


def forgetting(model, inputs, lengths, pad, generator):
    """--forget_penalty: the mean squared distance between the final states (the top layer's, no noise) of each
    sequence and its partner (`partners`). A network whose state depends on the sum and the last two digits
    alone pays nothing; the audit's keyed boxes are regions of exactly such states."""
    own, partner, kept = partners(inputs, lengths, pad, generator)
    if not len(kept):
        return inputs.new_zeros((), dtype=torch.float)
    final = model.final_hidden(torch.cat([own, partner]), torch.cat([kept, kept]))
    return ((final[: len(kept)] - final[len(kept):]) ** 2).sum(dim=1).mean()


class PenaltyWeight:
    """--stretch_penalty's or --forget_penalty's weight, set at every evaluation: 0 until the task is found;
    then it rises by an equal share at each evaluation at which the model is right on every evaluation
    sequence (reaching the flag's value at the last step if it always is), and halves at each one at which it
    is not. Each penalty asks the network to forget older digits; this keeps it from asking more than the task
    allows."""

    def __init__(self, target, total_steps, eval_every):
        self.target, self.total_steps, self.eval_every = target, total_steps, eval_every
        self.weight = 0.0

    def update(self, accuracy, found_at):
        if self.target and found_at is not None:
            rise = self.target * self.eval_every / max(self.total_steps - found_at, self.eval_every)
            self.weight = min(self.target, self.weight + rise) if accuracy == 1.0 else self.weight / 2


def prefix_targets(x, max_number):
    """The right answer after every digit, (batch, time); padded positions are -100, which the loss skips."""
    padding = x > max_number
    sums = x.masked_fill(padding, 0).cumsum(dim=1) % (max_number + 1)
    return sums.masked_fill(padding, -100)


def loss(model, criterion, inputs, lengths, targets, noise, args, stretch_weight=0.0, forget_weight=0.0,
         generator=None):
    """The training loss with --state_noise, --loss_at, --stretch_penalty and --forget_penalty (their weights at
    this step, stretch_weight and forget_weight; generator draws the partners) as args set them (the script
    computes the article's own loss, with none, itself). Returns (the loss, its cross-entropy part): the script
    logs the cross-entropy and the penalties apart, since the penalties grow as their weights rise."""
    every_digit = args.loss_at == "every_digit"  # every prefix is a sequence of the task with its own answer
    if forget_weight:  # first: the recorded runs summed their gradients in this order, bit for bit
        forget = forget_weight * forgetting(model, inputs, lengths, args.max_number + 1, generator)
    if every_digit and not (noise or stretch_weight):
        logits = model.prefix_logits(inputs, lengths, lengths_sorted=True).flatten(0, 1)  # the article's packed pass
        targets = prefix_targets(inputs, args.max_number).flatten()  # padded places are -100: skipped
    else:
        final, carried, outputs = model.noisy_states(inputs, lengths, noise)
        logits = model.fc(carried.data if every_digit else final)
        if every_digit:  # in packing's order: each running digit's prefix and its answer
            targets = pack_padded_sequence(prefix_targets(inputs, args.max_number), lengths.cpu(), batch_first=True).data
    cross_entropy = criterion(logits, targets)
    total = cross_entropy
    if stretch_weight:
        total = total + stretch_weight * box_stretch(model, outputs.data)
    return (total + forget if forget_weight else total), cross_entropy


class HardSequences:
    """The hardest sequences of the trained lengths for the model as it is, mixed into its batches.

    refresh(model) runs the beam search (beam.py) up to max_len digits and keeps, at each length,
    the sequences whose right answer wins by the least; mix(batch) then replaces `share` of the batch
    by sequences drawn from them. The batch keeps its size, so the count of sequences trained on does
    not change; the search itself only runs the model forward.
    """

    def __init__(self, share, batch_size, min_seq_len, max_len, max_number, seed, pool=2048):
        self.count = round(share * batch_size)
        self.lengths = (min_seq_len, max_len)
        self.max_number, self.pool_size = max_number, pool
        self.generator = torch.Generator().manual_seed(seed)  # its own stream: the data's stays the article's
        self.pool = None

    def refresh(self, model):
        base, (shortest, longest) = self.max_number + 1, self.lengths
        per_length = self.pool_size // (longest - shortest + 1)
        searched = copy.deepcopy(model).cpu().float()  # searched on the CPU, whatever trains it
        found = []  # (k, length) digits per length, padded with the pad token to the longest
        for length, (margins, sequence) in enumerate(beam.beam_levels(searched, base, max_length=longest,
                                                                      max_sequences=math.inf), start=1):
            if length >= shortest:  # the per_length smallest margins, smallest first
                digits = sequence(margins.topk(min(per_length, len(margins)), largest=False).indices)
                found.append(nn.functional.pad(digits, (0, longest - length), value=base))
        inputs = torch.cat(found)
        lengths = (inputs < base).sum(dim=1)
        self.pool = (inputs, lengths, inputs.masked_fill(inputs == base, 0).sum(dim=1) % base)

    def mix(self, inputs, lengths, targets):
        """The batch with its last `count` sequences replaced by hard ones, sorted again by length."""
        if self.pool is None or self.count == 0:
            return inputs, lengths, targets
        pick = torch.randint(len(self.pool[0]), (self.count,), generator=self.generator)
        keep, (pool_inputs, *pool_rest) = len(lengths) - self.count, self.pool
        width = max(inputs.shape[1], pool_inputs.shape[1])  # the wider of the two: pad the other to it
        inputs, pool_inputs = (nn.functional.pad(x, (0, width - x.shape[1]), value=self.max_number + 1)
                               for x in (inputs, pool_inputs))
        mixed = [torch.cat([part[:keep], pooled[pick].to(part.device)])
                 for part, pooled in zip((inputs, lengths, targets), (pool_inputs, *pool_rest))]
        order = mixed[1].argsort(descending=True, stable=True)
        return tuple(part[order.to(part.device)] for part in mixed)
