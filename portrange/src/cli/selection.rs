//! Which cases a command runs: name filters and a shard.

use crate::matrix::Shard;
use harness::Case;

/// Name filters, as libtest takes them, and a shard of what they keep.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selection {
    /// Only cases whose name contains one of these strings.
    pub filters: Vec<String>,
    /// Match filters against whole names only.
    #[arg(long)]
    pub exact: bool,
    /// Run only shard I of N (1-based): case k of the filtered list goes to
    /// shard k mod N + 1, so N machines split one run deterministically.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Also run the cases that deliberately hang, crash or flood the
    /// console (`*/harness_fault/*`), to see the harness handle them.
    #[arg(long)]
    pub include_harness_faults: bool,
}

impl Selection {
    /// The cases this selection keeps, in catalogue order. A selection
    /// that keeps nothing is an error, and so is a filter that matches no
    /// case (a typo would otherwise drop its cases silently): the error
    /// names the filter and the nearest names there are.
    pub fn apply(&self, cases: Vec<Case>) -> anyhow::Result<Vec<Case>> {
        let (wanted, faults): (Vec<Case>, Vec<Case>) = cases
            .into_iter()
            .partition(|case| self.include_harness_faults || !case.is_harness_fault());
        for filter in &self.filters {
            if wanted.iter().any(|case| self.matches(filter, case)) {
                continue;
            }
            if faults.iter().any(|case| self.matches(filter, case)) {
                anyhow::bail!(
                    "{filter:?} matches only cases that hang, crash or flood the console on \
                     purpose (*/harness_fault/*): add --include-harness-faults to run them"
                );
            }
            anyhow::bail!("{}", unmatched(filter, self.exact, &wanted));
        }
        let filtered: Vec<Case> = wanted
            .into_iter()
            .filter(|case| {
                self.filters.is_empty() || self.filters.iter().any(|f| self.matches(f, case))
            })
            .collect();
        let Some(shard) = self.shard else {
            return Ok(filtered);
        };
        let selected = filtered.len();
        let kept: Vec<Case> = filtered
            .into_iter()
            .enumerate()
            .filter(|(k, _)| shard.keeps(*k))
            .map(|(_, case)| case)
            .collect();
        if kept.is_empty() {
            anyhow::bail!(
                "--shard {shard} selects no case: the filters select {selected} case(s), too few \
                 for {} shards: use --shard I/N with N at most {selected}",
                shard.count
            );
        }
        Ok(kept)
    }

    fn matches(&self, filter: &str, case: &Case) -> bool {
        if self.exact {
            case.name == filter
        } else {
            case.name.contains(filter)
        }
    }
}

/// How many nearest names an unmatched filter's error gives at most: the
/// nearest one and any other as near, or within a third of the filter's
/// length.
const NEAREST: usize = 3;

/// The error for `filter` matching none of `cases`, with the names nearest
/// to it (Damerau-Levenshtein distance, from `strsim`, as clap uses for
/// its own suggestions): whole case names with `--exact`; else runs of as many
/// `/`-separated parts of a name as the filter has (`round_trp` is nearest
/// to `round_trip`, `tcp4/sockopt/round_trp` to the whole name), since a
/// filter is matched against any part of a name.
fn unmatched(filter: &str, exact: bool, cases: &[Case]) -> String {
    let parts = filter.split('/').count();
    let mut candidates: Vec<String> = cases
        .iter()
        .flat_map(|case| {
            let name: Vec<&str> = case.name.split('/').collect();
            let width = if exact {
                name.len()
            } else {
                parts.min(name.len())
            };
            name.windows(width)
                .map(|run| run.join("/"))
                .collect::<Vec<String>>()
        })
        .collect();
    candidates.sort();
    candidates.dedup();
    let distance = |candidate: &String| strsim::damerau_levenshtein(filter, candidate);
    candidates.sort_by_key(distance);
    let best = candidates.first().map_or(0, distance);
    let near = best.max(filter.chars().count() / 3);
    candidates.retain(|candidate| distance(candidate) <= near);
    candidates.truncate(NEAREST);
    let what = if exact {
        "no case is named"
    } else {
        "no case name contains"
    };
    format!(
        "{what} {filter:?}: the nearest names are {}; `portrange list` prints every name",
        candidates.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::{CaseDef, CaseError, Ctx, expand};
    use harness::{Family, Proto};

    fn noop(_: &Ctx) -> Result<(), CaseError> {
        Ok(())
    }

    fn catalogue() -> Vec<Case> {
        let defs = [
            CaseDef::new("a/one", noop),
            CaseDef::new("b/two", noop)
                .protos(&[Proto::Udp])
                .families(Family::BOTH),
        ];
        expand(&defs)
    }

    fn names(selection: &Selection) -> Vec<String> {
        selection
            .apply(catalogue())
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect()
    }

    fn refusal(selection: &Selection) -> String {
        selection.apply(catalogue()).unwrap_err().to_string()
    }

    #[test]
    fn shards_partition_the_filtered_cases_in_order() {
        let all = names(&Selection::default());
        let mut joined: Vec<String> = Vec::new();
        for index in 1..=3 {
            let shard = Selection {
                shard: Some(format!("{index}/3").parse().unwrap()),
                ..Selection::default()
            };
            joined.extend(names(&shard));
        }
        joined.sort();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(joined, sorted);
        let first = Selection {
            shard: Some("1/3".parse().unwrap()),
            ..Selection::default()
        };
        assert_eq!(names(&first)[..2], [all[0].clone(), all[3].clone()]);
    }

    #[test]
    fn filters_match_substrings_or_whole_names() {
        let udp = Selection {
            filters: vec!["udp6/".into()],
            ..Selection::default()
        };
        assert_eq!(names(&udp), ["udp6/a/one", "udp6/b/two"]);
        let exact = Selection {
            filters: vec!["udp6/a/one".into(), "tcp4/a/one".into()],
            exact: true,
            ..Selection::default()
        };
        assert_eq!(names(&exact), ["tcp4/a/one", "udp6/a/one"]);
        let part = Selection {
            filters: vec!["udp6/a".into()],
            exact: true,
            ..Selection::default()
        };
        assert!(refusal(&part).starts_with("no case is named \"udp6/a\""));
    }

    #[test]
    fn a_filter_matching_nothing_is_refused_with_the_nearest_parts() {
        let typo = Selection {
            filters: vec!["udp6/".into(), "b/tow".into()],
            ..Selection::default()
        };
        assert_eq!(
            refusal(&typo),
            "no case name contains \"b/tow\": the nearest names are b/two; \
             `portrange list` prints every name"
        );
    }

    #[test]
    fn an_exact_name_matching_nothing_is_refused_with_the_nearest_names() {
        let typo = Selection {
            filters: vec!["udp4/b/tow".into()],
            exact: true,
            ..Selection::default()
        };
        assert_eq!(
            refusal(&typo),
            "no case is named \"udp4/b/tow\": the nearest names are udp4/b/two, udp6/b/two; \
             `portrange list` prints every name"
        );
    }

    #[test]
    fn an_empty_shard_is_refused_naming_how_many_cases_there_are() {
        let shard = Selection {
            filters: vec!["b/two".into()],
            shard: Some("3/3".parse().unwrap()),
            ..Selection::default()
        };
        assert_eq!(
            refusal(&shard),
            "--shard 3/3 selects no case: the filters select 2 case(s), too few for 3 shards: \
             use --shard I/N with N at most 2"
        );
    }

    #[test]
    fn a_filter_matching_only_harness_faults_asks_for_them() {
        let defs = [
            CaseDef::new("a/one", noop),
            CaseDef::new("harness_fault/hangs", noop),
        ];
        let faults = Selection {
            filters: vec!["hangs".into()],
            ..Selection::default()
        };
        let error = faults.apply(expand(&defs)).unwrap_err().to_string();
        assert!(error.contains("--include-harness-faults"), "{error}");
        let included = Selection {
            include_harness_faults: true,
            ..faults
        };
        let names: Vec<String> = included
            .apply(expand(&defs))
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert!(!names.is_empty() && names.iter().all(|n| n.ends_with("/harness_fault/hangs")));
    }

    #[test]
    fn bad_shards_are_refused_with_the_expected_form() {
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("expected I/N"), "{bad}: {err}");
        }
    }
}
