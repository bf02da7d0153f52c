"""The audit's command line: python -m rnn_tutorial.audit [--save_dir RUN] [--figure automaton.png] ...

Exit status: 0 when no counterexample was found (proven or not), 1 when one was, 2 for bad input.
The last line printed is the verdict.
"""

import json
import os
import sys

import predict_cls_rnn
from rnn_tutorial import check_proof, verdicts
from rnn_tutorial.audit import certificate
from rnn_tutorial.audit.automaton import draw_automaton
from rnn_tutorial.audit.judge import audit
from rnn_tutorial.audit.proof import KEYED_ROUNDS
from rnn_tutorial.audit.report import report, run_length
from rnn_tutorial.beam import SEARCHED
from rnn_tutorial.console import OneLineErrorParser
from rnn_tutorial.runs import CheckpointError


def main(argv=None):
    p = OneLineErrorParser(prog="python -m rnn_tutorial.audit",
                                description="Audit a trained model: families, counterexample search, automaton, "
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
    p.add_argument("--certificate", help="for a proof by boxes, write its certificate to this file, for "
                   "python -m rnn_tutorial.check_proof CERT --save_dir RUN")
    args = p.parse_args(argv)
    if min(args.beam_sequences, args.gradient_sequences) < 0 or args.max_length < 6 or args.keyed_rounds < 1:
        p.error("--beam_sequences and --gradient_sequences must be zero or positive, --max_length at least 6 and "
                "--keyed_rounds at least 1")

    try:
        model, config, checkpoint = predict_cls_rnn.load_model(args)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(predict_cls_rnn.describe(config, checkpoint))
    result = audit(model, config, args.beam_sequences, args.max_length, gradient_sequences=args.gradient_sequences,
                   keyed_rounds=args.keyed_rounds, deep=args.deep, certificate=bool(args.certificate))
    cert = certificate.certificate(model, config["max_number"] + 1, result["proof"])
    result["proof"].pop("kept", None)
    print(report(result))
    if args.figure:
        draw_automaton(result["automaton"], args.figure, f"{config.get('run_name', '?')}: where each digit "
                                                         "takes each state")
        print(f"wrote {args.figure}")
    checked = None
    if args.certificate:
        if cert is None:
            print("no certificate: " + ("not proven" if not result["proof"]["proven"] else
                                        "the checker reads proofs by boxes of one tanh layer, not this one"))
        else:
            size = certificate.write(cert, args.certificate)
            print(f"wrote the certificate {args.certificate} ({size / 1e6:.1f} MB: {len(cert['lo']):,} regions); "
                  f"check it again with: python -m rnn_tutorial.check_proof {args.certificate} --checkpoint {checkpoint}")
            valid, message = check_proof.check(check_proof.load(args.certificate, "certificate"), model.state_dict())
            print(f"the checker: {message if valid else 'invalid: ' + message}")
            checked = {"path": os.path.abspath(args.certificate), "checked": valid, "message": message}
    found = result["counterexample"]
    verdicts.write(os.path.dirname(os.path.abspath(checkpoint)), checkpoint, model.state_dict(), result,
                   run_length(found["sequence"]) if found else None, checked)
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
