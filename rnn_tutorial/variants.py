"""Beyond the article: the one-change variants of its data, model and schedule that the ablation tries.

  add_flags                    their flags, as their own group of train_cls_rnn.py's parser; each is off
                                 (the article's behaviour) by default
  initialise_recurrent_weights --init orthogonal: every hidden-to-hidden block a random rotation
  curriculum_batches           the training stream, longer sequences from --curriculum_step on

  skew_digits                  --digit_skew: each training sequence favours one digit
Where a variant is one line of the article's own code, it stays there: --cosine_span in build_scheduler,
--grad_clip in the training loop.
"""

import torch
import torch.nn as nn

from rnn_tutorial import limits


def add_flags(parser, cell_types):
    group = parser.add_argument_group("variants of the data, model and schedule (beyond the article)")
    group.add_argument("--curriculum_max_len", type=int, default=0,
                       help="from --curriculum_step on, train on lengths min_seq_len..this (0 = off)")
    group.add_argument("--curriculum_step", type=int, default=0, help="the step at which longer sequences begin")
    group.add_argument("--digit_skew", type=float, default=0.0,
                       help="0..1: each training sequence favours one digit, with a share up to this "
                            "(0 = uniform digits, the article's; evaluation stays uniform)")
    group.add_argument("--rnn_type", choices=cell_types, default="rnn", help="recurrent cell (the article's: rnn)")
    group.add_argument("--init", choices=["default", "orthogonal"], default="default",
                       help="hidden-to-hidden weights: PyTorch's default, or random orthogonal")
    group.add_argument("--cosine_span", choices=["total", "after_warmup"], default="total",
                       help="cosine period: total_steps, starting after the warmup (the article's), or only "
                            "the steps after the warmup, ending exactly at min_lr")
    group.add_argument("--grad_clip", type=float, default=0.0, help="max gradient norm (0 = no clipping)")


def initialise_recurrent_weights(model, scheme):
    """'default' keeps PyTorch's uniform init; 'orthogonal' makes every hidden-to-hidden matrix a random
    rotation, so that early on the state neither shrinks nor blows up as it is carried from digit to digit."""
    if scheme == "default":
        return model
    for name, weight in model.rnn.named_parameters():
        if name.startswith("weight_hh"):
            for block in weight.data.chunk(weight.shape[0] // weight.shape[1]):  # one block per gate
                nn.init.orthogonal_(block)
    return model


def curriculum_batches(args, generator, training_batches):
    """The training stream: lengths min..max_seq_len (the article's), and with --curriculum_max_len, from
    --curriculum_step on, lengths min..curriculum_max_len: learn the short cases first, then hold the sum longer.
    training_batches: the script's stream of one range of lengths."""
    def stream(max_seq_len):
        return training_batches(args.batch_size, args.min_seq_len, max_seq_len, args.max_number, generator,
                                limits.data_chunk(dict(vars(args), max_seq_len=max_seq_len)), args.digit_skew)

    short = stream(args.max_seq_len)
    if not args.curriculum_max_len:
        yield from short
        return
    for _ in range(args.curriculum_step):
        yield next(short)
    yield from stream(args.curriculum_max_len)


def skew_digits(digits, digit_skew, max_number, generator):
    """--digit_skew: each sequence of digits (..., length) has a favourite digit, which each of its digits is with
    probability p (uniform in [0, digit_skew]): runs and mostly-zero sequences become common. Drawn from the
    data's own stream, after the article's digits."""
    shape = digits.shape[:-1]
    favourite = torch.randint(0, max_number + 1, (*shape, 1), generator=generator)
    share = digit_skew * torch.rand((*shape, 1), generator=generator)
    return torch.where(torch.rand(digits.shape, generator=generator) < share, favourite, digits)
