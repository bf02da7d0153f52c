"""Judge recorded runs again from their kept weights with the audit as it is now, and compare with the record.

After a change to the audit's code that should change no verdict (a refactor), this says whether it did:
for each record, whether the verdict, the counterexample, the families, both searches and the proof's
tries are what was recorded (a deep try, opt-in, is left out: the default audit does not make it). One
JSON line per record, appended as soon as it is judged, so a stopped run resumes where it stopped.

    python rnn_tutorial/rejudge.py --jobs 2           # `reliable`'s 58 seeds and 42 other records
    python rnn_tutorial/rejudge.py --summary          # the counts so far

The records: `reliable` over seeds 1-58 (each through the record that stands for it), then, from every
other recorded recipe or ablation row, one convicted and one clean record drawn with a fixed seed, of
which 24 convicted and 18 clean are kept (fixed seeds: the same selection every time).

The committed results judged `reliable`'s records of the code before the fast noisy pass; those records
are now under records/archive/stepped-noise/ (docs/study.md, "How we got here"), the same paths below it.
"""

import argparse
import glob
import json
import os
import random
import subprocess
import sys

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from rnn_tutorial import study, sweep  # noqa: E402
from rnn_tutorial.audit import judge, records  # noqa: E402

OUT = os.path.join(sweep.DEFAULT_RECORDS, "rejudge", "audit-package.jsonl")


def selection(store):
    """`reliable`'s 58 records, then 42 others (24 convicted, 18 clean), as absolute paths."""
    reliable = [os.path.abspath(store.path(t if store.load(t) is not None else study.without_restart(t)))
                for t in study.exact_tasks(range(1, 59), [], store, ["reliable"])]
    rng, others = random.Random(1), []
    for folder in sorted(glob.glob(os.path.join(store.root, "audit", "*"))):
        recs = [os.path.abspath(r) for r in sorted(glob.glob(os.path.join(folder, "seed*.json")))
                if os.path.abspath(r) not in reliable and os.path.exists(r[:-5] + ".pt")]
        convicted = [r for r in recs if json.load(open(r))["audit"]["counterexample"] is not None]
        clean = [r for r in recs if r not in convicted]
        others += rng.sample(convicted, min(1, len(convicted))) + rng.sample(clean, min(1, len(clean)))
    random.Random(2).shuffle(others)
    convicted = [p for p in others if json.load(open(p))["audit"]["counterexample"] is not None]
    return reliable + convicted[:24] + [p for p in others if p not in convicted][:18]


def rejudged(path):
    """The comparison of one record with the audit now."""
    record = json.load(open(path))
    new, old = judge.audit(records.recorded_model(record, path[:-5] + ".pt"), record["flags"]), record["audit"]
    deep = bool(old["proof"].get("deep"))
    old_attempts = old["proof"].get("attempts", [])[:-1] if deep else old["proof"].get("attempts")
    return {"path": os.path.relpath(path, sweep.DEFAULT_RECORDS), "seconds": new["seconds"], "deep": deep,
            "same_verdict": new["verdict"] == old["verdict"], "same_counterexample": new["counterexample"] == old[
                "counterexample"],
            "same_families": [f["wrong"] for f in new["families"]] == [f["wrong"] for f in old["families"]],
            "same_searches": (new["searched"], new["gradient_search"]) == (old["searched"], old["gradient_search"]),
            "same_attempts": new["proof"].get("attempts") == old_attempts, "proven_before": old["proof"]["proven"],
            "proven_now": new["proof"]["proven"], "counterexample": old["counterexample"] is not None}


def done(out):
    return [json.loads(line) for line in open(out)] if os.path.exists(out) else []


def same(line):
    """The same judgement: the same verdict and proof outcome (a record the opt-in deep try judged is compared
    without it), the same counterexample, families and searches. The proof's earlier tries may differ where the
    record's proof was kept from an older audit (judge.PROOF_KEPT_SINCE): `same_attempts` says which."""
    return all(line[k] for k in ("same_counterexample", "same_families", "same_searches")) and (
        line["same_verdict"] or line["deep"]) and (line["proven_before"] == line["proven_now"] or line["deep"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=OUT, help="the JSON lines written so far (and resumed from)")
    p.add_argument("--jobs", type=int, default=1, help="processes, one torch thread each")
    p.add_argument("--summary", action="store_true", help="only count what is written")
    p.add_argument("--paths", nargs="*", help=argparse.SUPPRESS)  # a worker's share
    args = p.parse_args(argv)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    if args.paths is not None:
        for path in args.paths:
            with open(args.out, "a") as f:
                f.write(json.dumps(rejudged(path)) + "\n")
        return
    judged = {line["path"] for line in done(args.out)}
    left = [q for q in selection(sweep.RecordStore(sweep.DEFAULT_RECORDS))
            if os.path.relpath(q, sweep.DEFAULT_RECORDS) not in judged]
    if not args.summary and left:
        workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--out", args.out, "--paths",
                                     *left[i::args.jobs]]) for i in range(args.jobs)]
        for worker in workers:
            worker.wait()
    lines = done(args.out)
    print(f"{len(lines)} records judged again ({sum(not line['counterexample'] for line in lines)} without a "
          f"counterexample), {len(left) if args.summary else 0} left; the same judgement on "
          f"{sum(map(same, lines))}; differing: {[line['path'] for line in lines if not same(line)]}; earlier proof "
          f"tries not as recorded: {[line['path'] for line in lines if not line['same_attempts']]}")


if __name__ == "__main__":
    main()
