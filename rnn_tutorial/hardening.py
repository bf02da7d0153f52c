"""Training beyond the article: what the recipes of README section 12 add to make a network right on
every kind of sequence, not only on random ones. Each is an opt-in flag of train_cls_rnn.py, off by
default; they live here, not in the script, because the article trains with none of them.

  loss                the training loss with the two below, as the flags set them
  noisy_logits        --state_noise: Gaussian noise on the hidden state after every digit
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


def noisy_logits(model, x, seq_lengths, noise, every_digit=False):
    """The forward pass one digit at a time, with Gaussian noise on the hidden state after every digit,
    so that a network whose states drift is punished for it. An ended sequence keeps its state through
    the padded steps, as packing would. every_digit: the logits after each digit, (batch, time,
    classes), instead of after the last one."""
    lstm = isinstance(model.rnn, nn.LSTM)  # its state is (h, c); the other cells' is h alone
    embedded, parts, tops = model.embedding(x), None, []
    for t in range(x.shape[1]):
        _, new = model.rnn(embedded[:, t : t + 1], None if parts is None else parts if lstm else parts[0])
        new = tuple(s + noise * torch.randn_like(s) for s in (new if lstm else (new,)))
        running = (t < seq_lengths).to(x.device).view(1, -1, 1)
        parts = new if parts is None else tuple(torch.where(running, n, o) for n, o in zip(new, parts))
        tops.append(parts[0][-1])
    return model.fc(torch.stack(tops, dim=1) if every_digit else parts[0][-1])


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


def loss(model, criterion, inputs, lengths, targets, noise, args):
    """The training loss with --state_noise and --loss_at as args set them (the script computes the
    article's own loss, with neither, itself)."""
    if args.loss_at == "every_digit":  # every prefix is a sequence of the task with its own answer
        logits = (noisy_logits(model, inputs, lengths, noise, every_digit=True) if noise
                  else every_digit_logits(model, inputs, lengths))
        return criterion(logits.flatten(0, 1), prefix_targets(inputs, args.max_number).flatten())
    return criterion(noisy_logits(model, inputs, lengths, noise), targets)


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
