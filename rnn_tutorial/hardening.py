"""Training beyond the article: what the recipes of README section 12 add to make a network right on
every kind of sequence, not only on random ones. Each is an opt-in flag of train_cls_rnn.py, off by
default; they live here, not in the script, because the article trains with none of them.

  loss                the training loss with the four below, as the flags set them, and its
                        cross-entropy part
  stepped_states      --state_noise: the forward pass a digit at a time, with Gaussian noise on the
  noisy_logits          hidden state after every digit
  box_stretch         --stretch_penalty: once the task is found, a penalty on how much one digit's step
                        can widen a box around the states the cell reaches (one tanh layer)
  forgetting          --forget_penalty: once the task is found, a penalty on how far apart the states
  partners              after two sequences with the same sum and the same last two digits end
  PenaltyWeight       either penalty's weight, rising while the model stays right on every evaluation
                        sequence
  every_digit_logits  --loss_at every_digit: the loss on the answer after every digit, each prefix
  prefix_targets        scored against its own sum
  HardSequences       --hard_share: once the task is found, part of every batch is the sequences of
                      the trained lengths that the model answers right by the least (or wrong), found
                      by the audit's beam search on the model as it is at each evaluation
"""

import copy
import math

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnn_tutorial import audit


def stepped_states(model, x, seq_lengths, noise):
    """The forward pass one digit at a time, with Gaussian noise on the hidden state after every digit, so
    that a network whose states drift is punished for it. An ended sequence keeps its state through the
    padded steps, as packing would. Returns the top layer's state carried after each digit and the cell's
    own output before the noise was added (what --stretch_penalty measures), both (batch, time, hidden)."""
    lstm = isinstance(model.rnn, nn.LSTM)  # its state is (h, c); the other cells' is h alone
    embedded, parts, carried, outputs = model.embedding(x), None, [], []
    for t in range(x.shape[1]):
        _, new = model.rnn(embedded[:, t : t + 1], None if parts is None else parts if lstm else parts[0])
        new = new if lstm else (new,)
        outputs.append(new[0][-1])
        new = tuple(s + noise * torch.randn_like(s) for s in new)
        running = (t < seq_lengths).to(x.device).view(1, -1, 1)
        parts = new if parts is None else tuple(torch.where(running, n, o) for n, o in zip(new, parts))
        carried.append(parts[0][-1])
    return torch.stack(carried, dim=1), torch.stack(outputs, dim=1)


def noisy_logits(model, x, seq_lengths, noise, every_digit=False):
    """The logits of stepped_states: after the last digit, (batch, classes), or after each digit,
    (batch, time, classes)."""
    carried, _ = stepped_states(model, x, seq_lengths, noise)
    return model.fc(carried if every_digit else carried[:, -1])


def box_stretch(model, outputs, seq_lengths):
    """--stretch_penalty: how much one digit's step can widen a box around each state the cell reached.

    For h' = tanh(W h + u), unit i of h' moves by at most (1 - h'_i^2) * sum_j |W_ij| per unit of
    box width (tanh's slope there times its row of W): a saturated unit (|h'| near 1) widens nothing.
    The mean over running positions of the sum over units of its square. A network whose every unit
    stays below 1 forgets old digits one step at a time, which is what lets the audit's boxes close.
    """
    rows = model.rnn.weight_hh_l0.abs().sum(dim=1)
    per_state = (((1 - outputs**2) * rows) ** 2).sum(dim=2)  # (batch, time)
    running = torch.arange(outputs.shape[1], device=outputs.device)[None, :] < seq_lengths.to(outputs.device)[:, None]
    return per_state[running].mean()


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
    both = torch.cat([own, partner])
    packed = pack_padded_sequence(model.embedding(both), torch.cat([kept, kept]).cpu(), batch_first=True,
                                  enforce_sorted=False)
    final = model.rnn(packed)[1]
    final = (final[0] if isinstance(final, tuple) else final)[-1]
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


def every_digit_logits(model, x, seq_lengths):
    """The packed forward pass, read out after every digit: (batch, time, classes)."""
    packed = pack_padded_sequence(model.embedding(x), seq_lengths.cpu(), batch_first=True, enforce_sorted=True)
    outputs, _ = pad_packed_sequence(model.rnn(packed)[0], batch_first=True, total_length=x.shape[1])
    return model.fc(outputs)  # the top layer's state after each digit


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
        logits = every_digit_logits(model, inputs, lengths)  # the packed pass: nothing needs a digit at a time
    else:
        carried, outputs = stepped_states(model, inputs, lengths, noise)
        logits = model.fc(carried if every_digit else carried[:, -1])
    if every_digit:
        cross_entropy = criterion(logits.flatten(0, 1), prefix_targets(inputs, args.max_number).flatten())
    else:
        cross_entropy = criterion(logits, targets)
    total = cross_entropy
    if stretch_weight:
        total = total + stretch_weight * box_stretch(model, outputs, lengths)
    return (total + forget if forget_weight else total), cross_entropy


class HardSequences:
    """The hardest sequences of the trained lengths for the model as it is, mixed into its batches.

    refresh(model) runs the audit's beam search up to max_len digits and keeps, at each length,
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
        found = []
        for length, (margins, sequence) in enumerate(audit.beam_levels(searched, base, max_length=longest,
                                                                       max_sequences=math.inf), start=1):
            if length >= shortest:
                found += [sequence(int(i)) for i in margins.argsort()[:per_length]]
        inputs = torch.full((len(found), longest), base, dtype=torch.long)  # padded with the pad token
        for row, digits in enumerate(found):
            inputs[row, : len(digits)] = torch.tensor(digits)
        self.pool = (inputs, torch.tensor([len(d) for d in found]), torch.tensor([sum(d) % base for d in found]))

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
