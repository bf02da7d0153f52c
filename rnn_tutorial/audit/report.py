"""The audit's verdict and report, as text: the last line the command prints, and the lines before it."""


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
                     f"the states it settles into {change} by a factor {loop['per_digit']:.3g} a digit"
                     + (f" (a small difference between two states, by {loop['network_per_digit']:.3g})"
                        if "network_per_digit" in loop else ""))
    lines.append(f"audit took {result['seconds']:.1f} s")
    return "\n".join(lines)
