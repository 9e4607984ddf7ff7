"""The price of one checked property: a run's cases phase over the cases it
ran, the targets set on it (issue 27), and where the time goes when a
target is missed. Everything comes from what a run already reports:
portrange's JSON report (its phases and each case's micros) and, for the
kernel's selftest, its wall time and output. Pure functions over numbers,
so bench/test_per_case.py checks them without running anything."""

import statistics

# Per-case cost in a VM at or below the selftest's, natively within 1.5x
# of it, and the full suite's whole run on the minimal kernel within 2x the
# selftest booted the same way.
VM_PER_CASE_TARGET = 1.0
NATIVE_PER_CASE_TARGET = 1.5
VM_WHOLE_RUN_TARGET = 2.0
# The randomized model cases may take at most this share of the cases
# phase on the minimal kernel.
MODEL_SHARE_LIMIT = 0.25


def is_model(name):
    """A randomized model case (`tcp4/model/...`)."""
    return "/model/" in f"/{name}"


def report_costs(report):
    """From one portrange JSON report: each phase in seconds (None where
    not measured), the cases run (skips excluded), the micros of the
    model/* cases and of the others summed (cases run on every worker at
    once, so these sums exceed the phase), and one other case's median in
    milliseconds (its namespace set-up included). None without a report."""
    if not report:
        return None
    phases = report.get("phases") or {}
    seconds = lambda key: None if phases.get(key) is None else phases[key] / 1e6
    ran = [r for r in report["results"] if r["outcome"] != "skip"]
    model = [r["micros"] for r in ran if is_model(r["name"])]
    other = [r["micros"] for r in ran if not is_model(r["name"])]
    return {
        "boot": seconds("boot_micros"),
        "probes": seconds("probes_micros"),
        "cases": seconds("cases_micros"),
        "vm": seconds("vm_micros"),
        "executed": len(ran),
        "models": len(model),
        "others": len(other),
        "model sum": sum(model) / 1e6,
        "other sum": sum(other) / 1e6,
        "other median ms": statistics.median(other) / 1e3 if other else None,
    }


def per_case_ms(seconds, executed):
    """Milliseconds per case run, or None."""
    return None if seconds is None or not executed else seconds * 1e3 / executed


def ratio(x, y):
    return None if x is None or y is None or y == 0 else x / y


def verdict(value, target):
    """MET or MISSED against an upper bound; `not measured` without a value."""
    if value is None:
        return "not measured"
    return "MET" if value <= target else "MISSED"


def model_share(costs):
    """The model/* cases' share of the cases phase: their worker time over
    all cases' worker time (the phase is spread over the workers in that
    proportion). None without cases."""
    total = costs["model sum"] + costs["other sum"]
    return None if total <= 0 else costs["model sum"] / total


def budget_factor(costs, limit=MODEL_SHARE_LIMIT):
    """By how much `RUN_BUDGET` would have to be multiplied for the model
    cases to take exactly `limit` of the cases phase, their worker time
    taken as proportional to the budget (in a VM the budget, not the
    configuration count, ends them). None without model cases."""
    if costs["model sum"] <= 0:
        return None
    return costs["other sum"] * limit / (1 - limit) / costs["model sum"]


def namespace_ms(with_namespaces, reused):
    """What making a case's namespace costs it, in milliseconds: one other
    case's median with fresh (or ahead) namespaces less the same with
    reused ones (whose clean check stays in the case). None when either is
    unknown; 0 or less means it is not visible in this run."""
    if with_namespaces is None or reused is None:
        return None
    return with_namespaces - reused


def split_cases(costs, ns_ms):
    """The cases phase split in proportion to the worker time each part
    took: the model/* cases, namespace creation (ns_ms for each other case,
    when known and visible) and the other cases' bodies. Seconds of the
    phase, or None without the phase or any case."""
    total = costs["model sum"] + costs["other sum"]
    if costs["cases"] is None or total <= 0:
        return None
    ns = 0.0 if ns_ms is None or ns_ms <= 0 else min(ns_ms / 1e3 * costs["others"],
                                                      costs["other sum"])
    parts = {"model/* cases": costs["model sum"], "namespace creation": ns,
             "case bodies": costs["other sum"] - ns}
    return {k: costs["cases"] * v / total for k, v in parts.items()}


def describe_split(split, executed):
    """`model/* cases 1.45 ms (15%), ...`: each part per case run and as a
    share of the phase."""
    phase = sum(split.values())
    return ", ".join(f"{k} {v * 1e3 / executed:.2f} ms ({100 * v / phase:.0f}%)"
                     for k, v in split.items())
