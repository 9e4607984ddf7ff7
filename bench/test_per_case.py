"""Checks bench/per_case.py on made-up reports (no run, no timing):
`python3 -m unittest test_per_case` in bench/, or through
`cargo test -p portrange --test bench_script`."""

import unittest

import per_case


def fake_report(cases_micros, results):
    """A portrange JSON report reduced to what per_case reads (made up)."""
    return {"phases": {"boot_micros": 900_000, "probes_micros": 70_000,
                       "cases_micros": cases_micros, "vm_micros": 5_000_000},
            "results": [{"name": n, "outcome": o, "micros": m} for n, o, m in results]}


# Four cases run on two workers: one model case, three others, and a skip.
REPORT = fake_report(3_000_000, [
    ("tcp4/model/random_configurations_agree_with_kernel", "pass", 1_000_000),
    ("tcp4/bind_zero/a", "pass", 2_000_000),
    ("tcp4/bind_zero/b", "fail", 1_000_000),
    ("udp4/connect/c", "pass", 2_000_000),
    ("sctp4/bind_zero/a", "skip", 5),
])


class ReportCosts(unittest.TestCase):
    def test_phases_cases_run_and_sums(self):
        c = per_case.report_costs(REPORT)
        self.assertEqual(c["cases"], 3.0)
        self.assertEqual(c["boot"], 0.9)
        self.assertEqual(c["executed"], 4)  # the skip is not a case run
        self.assertEqual((c["models"], c["others"]), (1, 3))
        self.assertEqual((c["model sum"], c["other sum"]), (1.0, 5.0))
        self.assertEqual(c["other median ms"], 2000.0)

    def test_no_report_no_costs(self):
        self.assertIsNone(per_case.report_costs(None))

    def test_missing_phase_is_none(self):
        report = fake_report(None, [("tcp4/x", "pass", 10)])
        self.assertIsNone(per_case.report_costs(report)["cases"])


class PerCase(unittest.TestCase):
    def test_cases_phase_over_cases_run(self):
        self.assertEqual(per_case.per_case_ms(3.0, 4), 750.0)
        self.assertIsNone(per_case.per_case_ms(3.0, 0))
        self.assertIsNone(per_case.per_case_ms(None, 4))

    def test_targets_are_upper_bounds(self):
        self.assertEqual(per_case.verdict(1.0, per_case.VM_PER_CASE_TARGET), "MET")
        self.assertEqual(per_case.verdict(1.01, per_case.VM_PER_CASE_TARGET), "MISSED")
        self.assertEqual(per_case.verdict(1.5, per_case.NATIVE_PER_CASE_TARGET), "MET")
        self.assertEqual(per_case.verdict(2.1, per_case.VM_WHOLE_RUN_TARGET), "MISSED")
        self.assertEqual(per_case.verdict(None, 1.0), "not measured")


class Shares(unittest.TestCase):
    def test_model_share_is_worker_time(self):
        c = per_case.report_costs(REPORT)
        self.assertAlmostEqual(per_case.model_share(c), 1 / 6)

    def test_budget_factor_brings_the_share_to_the_limit(self):
        c = per_case.report_costs(REPORT)  # 1 s of model cases, 5 s of others
        factor = per_case.budget_factor(c)
        self.assertAlmostEqual(factor, 5 / 3)
        scaled = dict(c, **{"model sum": c["model sum"] * factor})
        self.assertAlmostEqual(per_case.model_share(scaled), per_case.MODEL_SHARE_LIMIT)
        self.assertIsNone(per_case.budget_factor(dict(c, **{"model sum": 0.0})))

    def test_namespace_cost_is_fresh_less_reused(self):
        self.assertEqual(per_case.namespace_ms(11.9, 7.0), 11.9 - 7.0)
        self.assertIsNone(per_case.namespace_ms(11.9, None))

    def test_split_adds_up_to_the_phase(self):
        c = per_case.report_costs(REPORT)
        split = per_case.split_cases(c, 500.0)  # 0.5 s for each of the 3 others
        self.assertAlmostEqual(sum(split.values()), 3.0)
        self.assertAlmostEqual(split["model/* cases"], 3.0 * 1 / 6)
        self.assertAlmostEqual(split["namespace creation"], 3.0 * 1.5 / 6)
        self.assertAlmostEqual(split["case bodies"], 3.0 * 3.5 / 6)
        self.assertEqual(per_case.describe_split(split, 4),
                         "model/* cases 125.00 ms (17%), namespace creation 187.50 ms (25%), "
                         "case bodies 437.50 ms (58%)")

    def test_invisible_namespace_cost_stays_in_the_bodies(self):
        c = per_case.report_costs(REPORT)
        for ns in (None, 0.0, -3.0):
            self.assertEqual(per_case.split_cases(c, ns)["namespace creation"], 0.0)


if __name__ == "__main__":
    unittest.main()
