"""What makes it learn: how lucky the article was, what changes the outcome, and why.

Four parts, every run through the sweep engine (sweep.py) and recorded under
rnn_tutorial/records/ like reproduce.py's runs (the same run is never trained
twice: the ablation's base row reuses the sota_warmup runs, and so on):

  luck      the article's six experiments, exactly as written, over seeds 1-20:
            for each claim, the share of seeds that reach it, with a 95% interval
  ablation  start from sota_warmup (or from reliable_rnn, the recipes' base) and change one
            thing per row, over 10 seeds: converged seeds, accuracy at lengths
            21-50, median steps to 99%, time per run
  inside    a few working and failing runs looked at from inside (inside.py):
            accuracy mod 2 and mod 5 over time, hidden states in 3 PCA dimensions
  exact     is it really an adder? The recipes over seeds 1-20 and each ablation row
            over its converged seeds, trained again and audited (audit/): the
            families each seed passes, counterexamples, proofs; the final weights
            are kept beside each record (records/audit/.../seed<N>.pt)

    python rnn_tutorial/study.py luck                 # 120 runs (the first 5 seeds are reproduce.py's)
    python rnn_tutorial/study.py ablation --rows "lengths 1-5" "reliable_rnn, hidden 32"
    python rnn_tutorial/study.py inside
    python rnn_tutorial/study.py exact --rows                 # the recipes only, over seeds 1-20
    python rnn_tutorial/study.py exact --rows --recipes reliable --seeds 5   # one recipe, seeds 1-5
    python rnn_tutorial/study.py exact --reaudit --rows       # first judge recorded runs again if the audit changed
    python rnn_tutorial/study.py table --reaudit --rows --seeds 1-50   # only that, for every recorded seed: no training
    python rnn_tutorial/study.py table                # every table (and study.json) from the records, no training

Each part writes rnn_tutorial/study.json (the parts already there are kept);
figures.py draws the study's figures from it.
"""

import argparse
import dataclasses
import io
import json
import math
import os
import statistics
import sys

if __package__ in (None, ""):  # run as a file: import the package from the repository root
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from rnn_tutorial import article_check, generated, inside, reproduce, scoring, sweep  # noqa: E402
from rnn_tutorial.audit import judge, records  # noqa: E402
from rnn_tutorial.experiments import ABLATION, ARTICLE_SIX, CLAIMS, EXPERIMENTS, INSIDE, PILOTS  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STUDY_JSON = os.path.join(HERE, "study.json")


# ----------------------------------------------------------------------------
# 1. How lucky was the article?
# ----------------------------------------------------------------------------


def wilson_interval(k, n, z=1.96):
    """95% Wilson score interval of a share k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def claim_rows(runs):
    """For each claim: k of n seeds reach it, the 95% interval, and a verdict."""
    by_name = {}
    for r in runs:
        by_name.setdefault(r["run_name"], {})[r["seed"]] = r
    rows = []
    for claim in CLAIMS:
        if claim.reached is None:  # said, not measured seed by seed (see reproduce.py's tables)
            continue
        name, (article_runs, article_hits) = claim.experiment, claim.article
        seeds = by_name.get(name, {})
        if name == "large_batch":  # compared seed by seed with the baseline
            seeds = {s: r for s, r in seeds.items() if s in by_name.get("baseline", {})}
        if not seeds:
            continue
        k = sum(bool(claim.reached(r, by_name.get("baseline", {}))) for r in seeds.values())
        low, high = wilson_interval(k, len(seeds))
        p = k / len(seeds)
        chance = math.comb(article_runs, article_hits) * p**article_hits * (1 - p) ** (article_runs - article_hits)
        rows.append({"run_name": name, "claim": claim.words, "k": k, "n": len(seeds), "low": low, "high": high,
                     "article_chance": chance,
                     "verdict": verdict(k, len(seeds), low, high, article_hits / article_runs)})
    return rows


def verdict(k, n, low, high, article_share):
    """Out of reach (no seed), typical (the article's share lies in our 95% interval), or luck."""
    if k == 0:
        return f"out of reach: no seed of {n} (at most {100 * high:.0f}% of seeds, at 95%)"
    if low <= article_share <= high:
        return "typical: the article's share is within our interval"
    return f"luck: {k} seed{'s' if k > 1 else ''} of {n}"


def claims_table(rows):
    lines = ["| experiment | the article's claim | seeds that reach it | share, 95% interval | "
             "chance of the article's outcome at that share | verdict |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['run_name']} | {row['claim']} | {row['k']} of {row['n']} | "
                     f"{100 * row['k'] / row['n']:.0f}% ({100 * row['low']:.0f}–{100 * row['high']:.0f}%) | "
                     f"{100 * row['article_chance']:.0f}% | {row['verdict']} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# 2. The ablation: one change per row
# ----------------------------------------------------------------------------


def ablation_tasks(rows, seeds, seeds_given=False):
    experiments = {label: flags for label, (flags, _) in ABLATION.items()}
    tasks = []
    for row in rows:
        row_seeds = PILOTS[row] if row in PILOTS and not seeds_given else seeds
        tasks += scoring.make_tasks([row], row_seeds, experiments=experiments)
    return tasks


def steps_to(record, level=0.99):
    step = scoring.first_step_reaching(record, level)
    return math.inf if step is None else step


def ablation_rows(runs):
    rows = []
    for label, (flags, change) in ABLATION.items():
        mine = [r for r in runs if r["run_name"] == label]
        if not mine:
            continue
        median_steps = statistics.median(steps_to(r) for r in mine)
        rows.append({
            "row": label, "change": change, "command": "python train_cls_rnn.py " + " ".join(flags),
            "seeds": len(mine), "converged": sum(r["converged"] for r in mine),  # at the trained lengths
            "converged_2_5": sum(scoring.accuracy_at_article_lengths(r) >= scoring.CONVERGED for r in mine),
            "extrapolating": sum(r["accuracy_longer"]["21-50"] >= scoring.CONVERGED for r in mine),
            "mean_accuracy": statistics.fmean(r["test_accuracy"] for r in mine),
            "accuracy_21_50": statistics.fmean(r["accuracy_longer"]["21-50"] for r in mine),
            "min_accuracy_21_50": min(r["accuracy_longer"]["21-50"] for r in mine),
            "median_steps_to_99": None if math.isinf(median_steps) else median_steps,
            "wall_time_s": statistics.fmean(r["wall_time_s"] for r in mine),
        })
    return rows


def ablation_table(rows, full=10):
    """The rows run on at least `full` seeds; then, apart, the pilots run on fewer (not conclusive)."""
    head = ["| row | what changes | ≥ 99% at lengths 2-5 | ≥ 99% at the trained lengths | ≥ 99% at lengths 21-50 "
            "| lengths 21-50, mean (worst seed) | median steps to 99% | time per run |", "|---|---|---|---|---|---|---|---|"]
    tables = {True: list(head), False: list(head)}
    for row in rows:
        steps = "never" if row["median_steps_to_99"] is None else f"{row['median_steps_to_99'] / 1000:g}k"
        tables[row["seeds"] >= full].append(
            f"| {row['row']} | {row['change']} | {row['converged_2_5']} of {row['seeds']} | "
            f"{row['converged']} of {row['seeds']} | {row['extrapolating']} of {row['seeds']} | "
            f"{100 * row['accuracy_21_50']:.1f}% ({100 * row['min_accuracy_21_50']:.1f}%) | {steps} | "
            f"{row['wall_time_s']:.0f} s |")
    text = "\n".join(tables[True])
    if len(tables[False]) > 2:
        text += f"\n\nPilots, on fewer than {full} seeds (not conclusive):\n\n" + "\n".join(tables[False])
    return text


# ----------------------------------------------------------------------------
# 3. Inside: a few working and failing runs
# ----------------------------------------------------------------------------

def inside_tasks():
    return [sweep.Task("rnn_tutorial.inside:look_inside", name, seed, scoring.experiment_flags(name), (),
                       scoring.relative_cost(EXPERIMENTS[name])) for name, seed in INSIDE]


def describe_inside(task, record):
    last = record["curve"][-1]
    return (f"{task.name} seed {task.seed}: {100 * last['accuracy']:.1f}% "
            f"(mod 2: {100 * last['accuracy_mod2']:.1f}%, mod 5: {100 * last['accuracy_mod5']:.1f}%)")


# ----------------------------------------------------------------------------
# 4. Is it really an adder? The recipes and the converging rows, audited (audit/)
# ----------------------------------------------------------------------------

RECIPES = ["reliable", "reliable_no_restart", "reliable_no_stretch", "reliable_stretch_0.3", "reliable_hard_20_stretch",
           "reliable_forget", "reliable_forget_0.3", "reliable_harden_by_6000", "reliable_harden_by_8000",
           "reliable_restart_by_3000",
           "reliable_hard_every_500", "reliable_hard_20", "reliable_hard_0.5", "reliable_hard_when_found",
           "reliable_noise_once_found", "reliable_no_hard", "reliable_no_noise", "reliable_no_skew",
           "reliable_rnn_b128", "reliable_noise_0.1", "reliable_noise_0.3", "reliable_noise_0.1_no_skew",
           "reliable_noise_when_found", "reliable_every_digit", "reliable_b64", "reliable_b64_no_noise",
           "reliable_gru", "reliable_rnn"]


def exact_tasks(seeds, rows, store, recipes=RECIPES):
    """Every recipe over the seeds; each ablation row over the seeds 1-10 where its recorded run converged.
    The runs are trained again (the records hold no weights), audited, and their weights kept."""
    wanted = [(name, EXPERIMENTS[name], seed) for name in recipes for seed in seeds]
    for row in rows:
        flags = ABLATION[row][0]
        for task in scoring.make_tasks([row], range(1, 11), experiments={row: flags}):
            record = store.load(task)
            if record is not None and record["converged"]:
                wanted.append((row, flags, task.seed))
    tasks, seen = [], set()
    for name, flags, seed in wanted:
        task = sweep.Task("rnn_tutorial.study:train_and_audit", name, seed, tuple(flags), (),
                          scoring.relative_cost(flags), folder="audit")
        if store.path(task) not in seen:  # a row with a recipe's flags is the recipe's run: the same record
            seen.add(store.path(task))
            tasks.append(task)
    return tasks


def train_and_audit(name, seed, flags):
    """Sweep runner: train one run, score it, audit it; its final weights travel with the record
    (written beside it as seed<N>.pt), so that a better audit can judge it again without training."""
    result = scoring.train_run(name, seed, flags)
    record = scoring.run_record(name, seed, result)
    judged = judge.audit(result["model"], result["config"], certificate=True)
    if judged["proof"]["proven"]:  # checked by the independent checker (check_proof.py) before it counts
        judged["certificate"] = records.checked(result["model"], result["config"]["max_number"] + 1, judged["proof"])
    judged["proof"].pop("kept", None)
    record["audit"] = judge.summary(judged)
    weights = io.BytesIO()
    torch.save(result["model"].state_dict(), weights)
    record["attachments"] = {".pt": weights.getvalue()}
    return record


def without_restart(task):
    """The same task without --restart_by N."""
    at = task.flags.index("--restart_by")
    return dataclasses.replace(task, flags=task.flags[:at] + task.flags[at + 2:])


def same_run_without_restart(task, store):
    """The record that stands for a run of --restart_by N found by step N (an evaluation at 99%), which never
    starts again and so is the run without the flag, step for step (tests/test_train.py; checked bit for bit on
    `reliable` seed 27, found at step 5200): the record of the run without the flag, if it was found by then,
    with the flag added to its flags and that record's path under "same_run_as". None otherwise: train it."""
    if "--restart_by" not in task.flags:
        return None
    restart_by, without = int(task.flags[task.flags.index("--restart_by") + 1]), without_restart(task)
    record = store.load(without)
    found = None if record is None else scoring.first_step_reaching(record, 0.99)
    if found is None or found > restart_by:
        return None
    return {**record, "flags": {**record["flags"], "restart_by": restart_by},
            "same_run_as": os.path.relpath(store.path(without), store.root)}


def judge_recorded(tasks, store, pending, again, described):
    """Every recorded run of the tasks that pending(record) selects, judged again from the weights kept beside it
    (no training) by again(record, weights); a run of --restart_by found by its step is judged through the record
    that stands for it. Each record is rewritten as soon as it is judged, so a stop loses nothing."""
    recorded = [without_restart(t) if store.load(t) is None and same_run_without_restart(t, store) else t
                for t in tasks]
    todo = [(t, r) for t in dict.fromkeys(recorded) if (r := store.load(t)) is not None and pending(r)]
    for number, (task, record) in enumerate(todo, 1):
        weights = store.attachment(task, ".pt")
        if not os.path.isfile(weights):
            print(f"{task.name} seed {task.seed}: no weights beside the record; train it again with --fresh")
            continue
        record = again(record, weights)
        store.save(task, record)
        print(f"[{number}/{len(todo)}] {described(task, record)}", flush=True)


def reaudit_stale(tasks, store, deep=False):
    """Judge again the recorded runs an older audit judged, and with deep, by the deep try the runs it has not
    yet tried."""
    def again(record, weights):
        record = records.reaudit(record, weights)
        if deep and records.deep_pending(record):
            print(f"{record['run_name']} seed {record['seed']}: the deep try (up to an hour)", flush=True)
            record = records.deepened(record, weights)
        return record
    judge_recorded(tasks, store, lambda r: records.stale(r) or deep and records.deep_pending(r), again,
                   lambda task, record: f"judged again: {describe_audited(task, record)}")


def certify_pending(tasks, store):
    """Write and check the certificate of every recorded proof of the tasks that has none yet."""
    def described(task, record):
        check = record["audit"]["certificate"]
        return f"{task.name} seed {task.seed}: certificate {'checked' if check['checked'] else 'NOT checked'}: " \
               f"{check['message']}"
    judge_recorded(tasks, store, records.certify_pending, records.certified, described)


def proven(record):
    """Proven for every length: the audit's proof, unless its certificate was refused by the checker (a proof whose
    certificate fails counts as not proven)."""
    judged = record["audit"]
    return judged["proof"]["proven"] and judged.get("certificate", {}).get("checked", True)


def certificate_checked(record):
    return bool(record["audit"].get("certificate", {}).get("checked"))


def describe_audited(task, record):
    return f"{task.name} seed {task.seed}: {100 * record['test_accuracy']:.1f}%; {record['audit']['verdict']}"


def gradient_judged(record):
    return "gradient_search" in record["audit"]  # not in a record judged before audit version 3


def gradient_found(record):
    return gradient_judged(record) and record["audit"]["gradient_search"]["found"] is not None


def runs_by_name(runs):
    """(name, its runs in seed order) for each experiment, in the order the runs first name them."""
    for name in dict.fromkeys(r["run_name"] for r in runs):
        yield name, sorted((r for r in runs if r["run_name"] == name), key=lambda r: r["seed"])


def exact_rows(runs):
    """Per experiment: how many seeds learn the task (on random sequences), pass each family, have no
    counterexample, run an adder, are proven."""
    rows = []
    for name, mine in runs_by_name(runs):
        families = [f["family"] for f in mine[0]["audit"]["families"]]
        rows.append({
            "row": name, "seeds": len(mine), "learned": sum(r["converged"] for r in mine),
            "families": {f: sum(next(x for x in r["audit"]["families"] if x["family"] == f)["wrong"] == 0
                                for r in mine) for f in families},
            "no_counterexample": sum(r["audit"]["counterexample"] is None for r in mine),
            # judged by the gradient search (audit version 3 on): how many, and on how many it found a wrong sequence
            "gradient_judged": sum(gradient_judged(r) for r in mine),
            "gradient_found": sum(gradient_found(r) for r in mine),
            # how strong a judge it is: on the runs it judged that have a counterexample, how often it found one,
            # and how often the beam found none
            "convicted_judged": sum(gradient_judged(r) and r["audit"]["counterexample"] is not None for r in mine),
            "gradient_convicts": sum(gradient_found(r) and r["audit"]["counterexample"] is not None for r in mine),
            "gradient_not_beam": sum(gradient_found(r) and r["audit"].get("beam_found") is None for r in mine),
            "adder": sum(r["audit"]["automaton"]["is_adder"] for r in mine),
            "proven": sum(proven(r) for r in mine),
            "certified": sum(certificate_checked(r) for r in mine),
            "refused": sum(r["audit"]["proof"]["proven"] and not proven(r) for r in mine),
            "counterexamples": {r["seed"]: r["audit"]["verdict"].removeprefix("counterexample ")
                                for r in mine if r["audit"]["counterexample"]},
            "audit_s": statistics.fmean(r["audit"]["seconds"] for r in mine),
        })
    return rows


FRESH_FROM = 21  # a recipe judged on every seed 1-20 and on later ones: the later are fresh (run once it was chosen)
SCREENED_FIRST = {"reliable_forget_0.3"}  # run first on seeds beyond 20 chosen because `reliable` failed on them
GRID_SEEDS = range(1, 101)


def grid_rows(runs):
    """Per recipe, what it trains with and what its seeds give: learned, no counterexample, proven; a recipe
    run on all of seeds 1-20 and beyond has its later seeds in a row of their own (fresh seeds, or for a screen
    run first on chosen seeds, those)."""
    rows = []
    for name, mine in runs_by_name(runs):
        chosen_on = [r for r in mine if r["seed"] < FRESH_FROM]
        groups = [(name, mine)]
        if len(chosen_on) >= FRESH_FROM - 1 and len(chosen_on) < len(mine):
            later = "the seeds it was screened on" if name in SCREENED_FIRST else "fresh seeds"
            groups = [(name, chosen_on), (f"{name}, {later}", [r for r in mine if r["seed"] >= FRESH_FROM])]
        f = mine[0]["flags"]
        hard = f"{f['hard_share']:g} ({f.get('hard_max_len') or f['max_seq_len']}), every {f['eval_every']}" \
            if f.get("hard_share") else "–"
        recipe = {"cell": f["rnn_type"], "batch": f["batch_size"],
                  "skew": f"{f['digit_skew']:g}" if f.get("digit_skew") else "–",
                  "noise": f"{f['state_noise']:g}" + (" once found" if f.get("state_noise_from") == "found" else "")
                  if f.get("state_noise") else "–",
                  "hard": hard + (" (loss after every digit)" if f.get("loss_at") == "every_digit" else ""),
                  "stretch": (f"{f['stretch_penalty']:g}" if f.get("stretch_penalty") else "–")
                  + (f", forget {f['forget_penalty']:g}" if f.get("forget_penalty") else "")
                  + (f" (hardened by step {f['harden_by']} if not found)" if f.get("harden_by") else "")
                  + (f" (started again at step {f['restart_by']} if not found)" if f.get("restart_by") else "")}
        for label, group in groups:
            rows.append({"row": label, **recipe, "seeds": [r["seed"] for r in group],
                         "learned": sum(r["converged"] for r in group),
                         "no_counterexample": sum(r["audit"]["counterexample"] is None for r in group),
                         "proven": sum(proven(r) for r in group),
                         "certified": sum(certificate_checked(r) for r in group),
                         "refused": sum(r["audit"]["proof"]["proven"] and not proven(r) for r in group)})
    return rows


def grid_table(rows):
    lines = ["| run | cell | batch | skew | noise | hard share (longest), searched every N steps | stretch penalty | "
             "seeds | learned | no counterexample found | proven for every length | certificate checked |",
             "|---" * 12 + "|"]
    for row in rows:
        n = len(row["seeds"])
        lines.append(f"| {row['row']} | {row['cell']} | {row['batch']} | {row['skew']} | {row['noise']} | "
                     f"{row['hard']} | {row['stretch']} | {sweep.describe_seeds(row['seeds']).replace('-', '–')} | "
                     f"{row['learned']} of {n} | {row['no_counterexample']} of {n} | {row['proven']} of {n} | "
                     f"{row.get('certified', 0)} of {n} |")
    return "\n".join(lines)


VERDICTS = ("proven", "no counterexample, not proven", "counterexample")


def verdict_of(record):
    """One of VERDICTS: what the audit concluded about one run."""
    judged = record["audit"]
    return VERDICTS[2] if judged["counterexample"] is not None else VERDICTS[0] if proven(record) else VERDICTS[1]


def loop_rows(runs):
    """Per recipe whose every record has the audit's slowest loop (measured since version 6; `--reaudit` adds
    it): by verdict, how much the slowest loop shrinks boxes a digit, and each seed's loop."""
    rows = []
    for name, mine in runs_by_name(runs):  # in seed order
        if not all(r["audit"].get("slowest_loop") for r in mine):
            continue
        for verdict_ in VERDICTS:
            loops = [(r["seed"], r["audit"]["slowest_loop"]) for r in mine if verdict_of(r) == verdict_]
            if loops:
                rows.append({"row": name, "verdict": verdict_, "seeds": [seed for seed, _ in loops],
                             "per_digit": [loop["per_digit"] for _, loop in loops],
                             "network_per_digit": [loop.get("network_per_digit") for _, loop in loops],
                             "words": [loop["word"] for _, loop in loops]})
    return rows


def median_and_range(factors):
    """A list of factors as its median and range, or a dash where one of them was not measured."""
    if None in factors:
        return "–"
    return f"{statistics.median(factors):.2f} ({min(factors):.2f}–{max(factors):.2f})"


def loop_table(rows):
    lines = ["| run | verdict | seeds | a box around the slowest loop, times per digit (median, range) | "
             "a small difference between two states on it, times per digit | "
             "each seed's slowest loop: box (difference), when few |", "|---|---|---|---|---|---|"]
    for row in rows:
        factors, network = row["per_digit"], row["network_per_digit"]
        each = "; ".join(f"{seed}: `{' '.join(map(str, word))}` {factor:.2f}" + (f" ({forgets:.2f})" if forgets is not None else "")
                         for seed, word, factor, forgets in zip(row["seeds"], row["words"], factors, network)
                         ) if len(factors) <= 6 else ""
        lines.append(f"| {row['row']} | {row['verdict']} | {len(factors)} | {median_and_range(factors)} | "
                     f"{median_and_range(network)} | {each} |")
    return "\n".join(lines)


def gradient_cell(row):
    """How many seeds the gradient search convicts, of those an audit with it has judged (not all, until
    `--reaudit` has judged the older records again)."""
    judged = row.get("gradient_judged", 0)
    if not judged:
        return "not run"
    return f"{row['gradient_found']} of {judged}" + ("" if judged == row["seeds"] else " judged")


def exact_table(rows):
    if not rows:
        return "(no audited runs yet)"
    families = list(rows[0]["families"])
    lines = ["| run | seeds | learned (≥ 99% at the trained lengths) | "
             + " | ".join(f"right on: {f}" for f in families)
             + " | no counterexample found | the gradient search finds one | automaton adds | "
               "proven for every length | certificate checked | audit time |",
             "|---|---|---|" + "---|" * (len(families) + 6)]
    for row in rows:
        n = row["seeds"]
        lines.append(f"| {row['row']} | {n} | {row['learned']} of {n} | "
                     + " | ".join(f"{row['families'][f]} of {n}" for f in families)
                     + f" | {row['no_counterexample']} of {n} | {gradient_cell(row)} | {row['adder']} of {n} | "
                     f"{row['proven']} of {n} | {row.get('certified', 0)} of {n} | "
                     f"{row['audit_s']:.0f} s |")
    convicted = sum(row.get("convicted_judged", 0) for row in rows)
    if convicted:
        runs = "run" if convicted == 1 else "runs"
        lines += ["", f"The gradient search, on the {convicted} {runs} it judged that have a counterexample, found "
                      f"one on {sum(row['gradient_convicts'] for row in rows)}; on "
                      f"{sum(row['gradient_not_beam'] for row in rows)} of those the beam found none."]
    lines += ["", "Shortest counterexample found, per seed (digits -> answer (truth); dxN: digit d, N times):", ""]
    for row in rows:
        for seed, text in row["counterexamples"].items():
            lines.append(f"- {row['row']} seed {seed}: {text}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------


def load_study():
    if os.path.isfile(STUDY_JSON):
        with open(STUDY_JSON) as f:
            return json.load(f)
    return {}


def save_study(study):
    with open(STUDY_JSON, "w") as f:
        json.dump(study, f, separators=(",", ":"))
        f.write("\n")


def run_part(part, args, store):
    """Train what the part needs (or, with table, only read the records); return its study.json entry."""
    if part == "luck":
        tasks = scoring.make_tasks(ARTICLE_SIX, args.seeds)
        describe = scoring.describe_run
    elif part == "ablation":
        tasks = ablation_tasks(args.rows, args.seeds, args.seeds_given)
        describe = scoring.describe_run
    elif part == "exact":
        tasks = exact_tasks(args.seeds, args.rows, store, args.recipes)
        describe = describe_audited
        if args.reaudit or args.deep:
            reaudit_stale(tasks, store, args.deep)
        if args.certify:
            certify_pending(tasks, store)
    else:
        tasks = inside_tasks()
        describe = describe_inside
    same = {t: r for t in tasks if store.load(t) is None and (r := same_run_without_restart(t, store))} \
        if part == "exact" else {}  # runs --restart_by cannot change: not trained twice
    if same:
        print(f"{len(same)} runs of --restart_by were found by that step: the records of their runs without it stand "
              "for them")
    if args.part == "table":
        recorded = {t: r for t in tasks if (r := store.load(t) or same.get(t)) is not None}
        result = sweep.SweepResult(recorded, [], 0)
    else:
        result = sweep.run_sweep([t for t in tasks if t not in same], store, describe, jobs=args.jobs,
                                 scheduler=args.scheduler, fresh=args.fresh, recheck=args.recheck)
        result.records.update(same)
    if part == "ablation":  # the table shows every row recorded so far, not only the rows run now
        tasks = ablation_tasks(list(ABLATION), args.seeds, args.seeds_given)
        result.records.update({t: r for t in tasks if t not in result.records and (r := store.load(t)) is not None})
    runs = scoring.collect(tasks, result.records)
    if part == "luck":
        light = [{k: r[k] for k in ("run_name", "seed", "test_accuracy", "converged", "accuracy_longer")}
                 for r in runs]
        return {"runs": light, "claims": claim_rows(runs), "seeds": args.seeds}, result
    if part == "ablation":
        return {"rows": ablation_rows(runs), "seeds": args.seeds,
                "runs": [{k: r[k] for k in ("run_name", "seed", "test_accuracy", "converged", "accuracy_longer",
                                            "eval_curve")} for r in runs]}, result
    if part == "exact":
        light = [{k: r[k] for k in ("run_name", "seed", "test_accuracy", "converged", "accuracy_longer", "audit")}
                 for r in runs]
        every_task = exact_tasks(GRID_SEEDS, [], store, args.recipes)
        every_seed = scoring.collect(every_task, {t: r for t in every_task  # the records loaded above, and the rest
                                                  if (r := result.records.get(t) or store.load(t)
                                                      or same_run_without_restart(t, store)) is not None})
        return {"rows": exact_rows(runs), "seeds": args.seeds, "runs": light, "grid": grid_rows(every_seed),
                "loops": loop_rows(every_seed)}, result
    return {"runs": runs}, result


def print_part(part, entry):
    if part == "exact":
        print(exact_table(entry["rows"]))
        print(f"\nThe recipes over every recorded seed of {sweep.describe_seeds(list(GRID_SEEDS))}:\n")
        print(grid_table(entry["grid"]))
        if entry.get("loops"):
            print("\nThe slowest loop of each seed (audit/dynamics.slowest_loop), where every seed of a recipe has it:\n")
            print(loop_table(entry["loops"]))
    elif part == "luck":
        print(claims_table(entry["claims"]))
    elif part == "ablation":
        print(ablation_table(entry["rows"]))
    else:
        for run in entry["runs"]:
            last = run["curve"][-1]
            print(f"{run['run_name']} seed {run['seed']}: {100 * run['test_accuracy']:.1f}%, "
                  f"mod 2 {100 * last['accuracy_mod2']:.1f}%, mod 5 {100 * last['accuracy_mod5']:.1f}%, "
                  f"PCA variance {run['pca']['explained_variance']}, "
                  f"nearest clusters {inside.cluster_separation(run['pca']['points'], run['pca']['sum_mod']):.2f} "
                  "radii apart")


def recipe_summary(name, loops, grid=()):
    """One sentence on a recipe over every seed recorded, from the slowest-loop rows (one per verdict), and how many
    proofs the independent checker has verified (from the grid's rows, when any has been checked); a proof whose
    certificate the checker refused is counted as not proven (study.proven)."""
    mine = {row["verdict"]: row["seeds"] for row in loops if row["row"] == name}
    rows = [row for row in grid if row["row"].split(",")[0] == name]
    certified, refused = sum(row.get("certified", 0) for row in rows) or None, sum(row.get("refused", 0) for row in rows)
    seeds = sorted(s for group in mine.values() for s in group)
    proven, unproven, wrong = (mine.get(v, []) for v in VERDICTS)

    def which(group):
        return "" if not group else f" (seed{'s' if len(group) > 1 else ''} {', '.join(map(str, group))})"

    sentence = f"`{name}`, over the {len(seeds)} seeds recorded ({sweep.describe_seeds(seeds)}): no counterexample " \
               f"found on {len(seeds) - len(wrong)}"
    if wrong:
        sentence += f", a counterexample on {len(wrong)}{which(wrong)}"
    sentence += f"; proven right for every length on {len(proven)}; not proven on {len(unproven)}{which(unproven)}."
    if certified is not None:
        sentence += f" Certificates checked by the independent checker: {certified} of the {len(proven)} proofs."
    if refused:
        sentence += f" The checker refused {refused} proof{'s' * (refused > 1)}: counted as not proven."
    return sentence + fresh_summary(seeds, wrong, proven)


def fresh_summary(seeds, wrong, proven):
    """Where a recipe has seeds on both sides of FRESH_FROM, the counts on the later ones alone: the recipe was chosen
    on seeds 1-20 (a count over them is kind to it), the later seeds were run once it was."""
    fresh = [s for s in seeds if s >= FRESH_FROM]
    if not fresh or len(fresh) == len(seeds):
        return ""
    count = lambda group: sum(s >= FRESH_FROM for s in group)  # noqa: E731
    return (f" On the {len(fresh)} seeds from {FRESH_FROM} on, run once the recipe was chosen on seeds 1-{FRESH_FROM - 1}: "
            f"no counterexample found on {len(fresh) - count(wrong)}, proven on {count(proven)}.")


def recorded_runs(name, store):
    """A recipe's recorded runs in a store, {task: record} in seed order (a run of --restart_by found in time is
    the record of the run without the flag)."""
    return {t: r for t in exact_tasks(GRID_SEEDS, [], store, [name])
            if (r := store.load(t) or same_run_without_restart(t, store))}


def recipe_summary_in(name, store):
    """recipe_summary of the recipe's records in another store (the archive of the code before)."""
    recorded = recorded_runs(name, store)
    runs = scoring.collect(recorded, recorded)
    return recipe_summary(name, loop_rows(runs), grid_rows(runs)) if runs else f"`{name}` has no record there."


def recipe_time(name, store):
    """One sentence on how long a recipe's recorded runs took, training and audit, from the records (each run is
    timed by itself: one process and one torch thread, the sweep running two at once on the records' machine)."""
    runs = list(recorded_runs(name, store).values())
    if not runs:
        return f"`{name}` has no recorded run."
    cores = sorted({r["env"]["cpus"] for r in runs})

    def spread(values):
        values = sorted(values)
        return f"a median of {values[len(values) // 2]:.0f} s ({values[0]:.0f}-{values[-1]:.0f} s)"

    return (f"Each of the {len(runs)} recorded runs of `{name}` trained in {spread(r['wall_time_s'] for r in runs)} "
            f"on one core, two runs at a time on a machine of {' or '.join(map(str, cores))} cores, and its audit "
            f"took {spread(r['audit']['seconds'] for r in runs)}.")


def late_loss(record, after=15_000):
    """The median evaluation loss of a run over its last 5,000 steps (of 20,000): how well it fits random sequences."""
    return statistics.median(e["loss"] for e in record["eval_curve"] if e["step"] > after)


def sign_test(above, count):
    """Two-sided p-value of `above` of `count` paired differences being positive, if either sign were as likely."""
    extreme = max(above, count - above)
    return min(1.0, 2 * sum(math.comb(count, i) for i in range(extreme, count + 1)) / 2**count)


def fisher_one_sided(a, n, b, m):
    """p-value of at least `a` of the `a + b` events falling in the first group (n runs against m), if they fell
    at random among the n + m runs (Fisher's exact test, one-sided)."""
    events = a + b
    return sum(math.comb(n, i) * math.comb(m, events - i) for i in range(a, min(n, events) + 1)) / math.comb(n + m, events)


def against_before(name, store, before):
    """A recipe's runs against the archive's runs of the code before, paired by seed: whether they fit random
    sequences as well (the evaluation loss of the last 5,000 steps) and how many end with a counterexample, on
    every seed both ran and on those from FRESH_FROM on."""
    new, old = ({t.seed: r for t, r in recorded_runs(name, s).items()} for s in (store, before))
    seeds = sorted(set(new) & set(old))
    if not seeds:
        return f"`{name}` has no seed recorded by both codes."
    above = sum(late_loss(new[s]) > late_loss(old[s]) for s in seeds)

    def flawed(seeds_):
        a, b = (sum(runs[s]["audit"]["counterexample"] is not None for s in seeds_) for runs in (new, old))
        return f"{a} of the new runs against {b} of the old (Fisher's exact test, one-sided, p = " \
               f"{fisher_one_sided(a, len(seeds_), b, len(seeds_)):.2g})"
    fresh, p = [s for s in seeds if s >= FRESH_FROM], sign_test(above, len(seeds))
    fit = "as the old ones did" if p >= 0.05 else "not as the old ones did"
    return (f"Paired by seed on the {len(seeds)} seeds both codes ran, the new code's runs fit random sequences {fit}: "
            f"the evaluation loss of the last 5,000 steps is higher than the old run's on {above} of {len(seeds)} "
            f"seeds (two-sided sign test, p = {p:.2g}). A counterexample is found on {flawed(seeds)}; on the "
            f"{len(fresh)} seeds from {FRESH_FROM} on, on {flawed(fresh)}.")


# the runs the experiments document shows: (experiments, seeds) of reproduce.py and of article_check.py
REPRODUCED = (ARTICLE_SIX + ["reliable_gru", "reliable_rnn"], range(1, 21))
REMEDIES = (["sota_clip", "sota_gru", "sota_lstm"], range(1, 6))
RECIPES_ON_RANDOM = (["sota_warmup", "reliable_gru", "reliable_rnn", "reliable_rnn_b128"], range(1, 21))  # study 6.3
ARTICLE_SCRIPT = (["baseline", "deeper_rnn", "sota_warmup"], range(1, 4))


def experiment_parts(store):
    """The tables of reproduce.py's and article_check.py's records (the experiments document, study 6.3)."""
    def recorded(tasks):
        return scoring.collect(tasks, {t: r for t in tasks if (r := store.load(t)) is not None})

    reproduced, remedies, on_random = (recorded(scoring.make_tasks(names, seeds))
                                       for names, seeds in (REPRODUCED, REMEDIES, RECIPES_ON_RANDOM))
    return {"experiments": reproduce.markdown_table(reproduced), "targets": reproduce.target_table(reproduced),
            "recipe-targets": reproduce.target_table(on_random),
            "onsets": reproduce.dynamics_table(reproduced), "remedies": reproduce.markdown_table(remedies),
            "article-script": article_check.table(recorded(article_check.tasks_of(*ARTICLE_SCRIPT)),
                                                  ARTICLE_SCRIPT[0])}


README_RECIPES = ("reliable", "reliable, fresh seeds", "reliable_no_stretch", "reliable_no_stretch, fresh seeds",
                  "reliable_gru", "reliable_rnn")  # the grid's rows the README shows


def generated_parts(study, store):
    """The generated parts of README.md and docs/ (generated.py), from study.json's entries and the records."""
    exact, before = study["exact"], archive(store)
    return {**experiment_parts(store), "claims": claims_table(study["luck"]["claims"]),
            "ablation": ablation_table(study["ablation"]["rows"]), "audited": exact_table(exact["rows"]),
            "grid": grid_table(exact["grid"]), "loops": loop_table(exact["loops"]),
            "recipes": grid_table([row for row in exact["grid"] if row["row"] in README_RECIPES]),
            "reliable": recipe_summary("reliable", exact["loops"], exact["grid"]), "reliable-time": recipe_time("reliable", store),
            "reliable-before": recipe_summary_in("reliable", before),
            "reliable-against-before": against_before("reliable", store, before)}


def archive(store):
    """The store of the records of the code before the recipe's rewrite (docs/study.md, How we got here)."""
    return sweep.RecordStore(os.path.join(store.root, "archive", "stepped-noise"))


DEFAULT_SEEDS = {"luck": "20", "ablation": "10", "inside": "1", "exact": "20"}  # each part's seeds without --seeds


def build_parser():
    p = argparse.ArgumentParser(description="How lucky the article was, what makes the RNN learn, and why.")
    p.add_argument("part", choices=[*DEFAULT_SEEDS, "all", "table"])
    p.add_argument("--rows", nargs="*", choices=list(ABLATION), default=list(ABLATION), metavar="ROW",
                   help="ablation rows (default: all; --rows alone: none): " + "; ".join(ABLATION))
    p.add_argument("--recipes", nargs="*", choices=list(EXPERIMENTS), default=RECIPES, metavar="NAME",
                   help="exact: the experiments audited over every seed (default: %(default)s; --recipes alone: "
                        "none, e.g. to audit only the rows of the ablation)")
    p.add_argument("--reaudit", action="store_true",
                   help="exact, table: first judge again, from their kept weights, the runs an older audit judged")
    p.add_argument("--certify", action="store_true",
                   help="exact, table: first write and check (python -m rnn_tutorial.check_proof) the certificate of "
                        "every recorded proof that has none (from the kept weights: seconds to a minute a run)")
    p.add_argument("--deep", action="store_true",
                   help="exact, table: first try the audit's deep proof (python -m rnn_tutorial.audit --deep: up to an "
                        "hour a run) on every recorded run with no counterexample and no proof that has not had it")
    sweep.add_sweep_arguments(p, seeds_default="")
    return p


def part_arguments(parser, args, part):
    """The command line's arguments for one part: --seeds, or the part's own default seeds."""
    part_args = argparse.Namespace(**vars(args))
    part_args.seeds_given = args.seeds != [""]
    part_args.seeds = args.seeds if part_args.seeds_given else [DEFAULT_SEEDS[part]]
    return sweep.check_sweep_arguments(parser, part_args)


def study_from_records(store):
    """Every part's entry as `study.py table` builds it from the records (default seeds), without writing."""
    parser = build_parser()
    args = parser.parse_args(["table", "--records", store.root])
    return {part: run_part(part, part_arguments(parser, args, part), store)[0] for part in DEFAULT_SEEDS}


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    parts = list(DEFAULT_SEEDS) if args.part in ("all", "table") else [args.part]
    store = sweep.RecordStore(args.records)
    study, failed = load_study(), []
    for part in parts:
        entry, result = run_part(part, part_arguments(p, args, part), store)
        print(f"\n## {part}\n")
        print_part(part, entry)
        study[part] = entry
        failed += result.failures
    save_study(study)
    print(f"\nwrote {STUDY_JSON}; draw the figures with: python rnn_tutorial/figures.py")
    if args.part == "table" and args.seeds == [""] and not args.reaudit and not args.deep:
        changed = generated.write(generated_parts(study, store))
        print("the generated parts of README.md and docs/: " + (f"rewrote {', '.join(changed)}" if changed else
                                                                  "all up to date"))
    else:
        print("the generated parts of README.md and docs/ are rewritten by `python rnn_tutorial/study.py table`")
    sweep.exit_if_failed(sweep.SweepResult({}, failed, 0))


if __name__ == "__main__":
    main()
