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
    /// The cases this selection keeps, in catalogue order.
    pub fn apply(&self, cases: Vec<Case>) -> Vec<Case> {
        let filtered = cases.into_iter().filter(|case| {
            let wanted = self.include_harness_faults || !case.is_harness_fault();
            let named = self.filters.is_empty()
                || self.filters.iter().any(|f| {
                    if self.exact {
                        case.name == *f
                    } else {
                        case.name.contains(f.as_str())
                    }
                });
            wanted && named
        });
        match self.shard {
            None => filtered.collect(),
            Some(shard) => filtered
                .enumerate()
                .filter(|(k, _)| shard.keeps(*k))
                .map(|(_, case)| case)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::{CaseDef, CaseError, Ctx, expand};
    use harness::{Family, Proto};

    fn noop(_: &Ctx) -> Result<(), CaseError> {
        Ok(())
    }

    fn names(selection: &Selection) -> Vec<String> {
        let defs = [
            CaseDef::new("a/one", noop),
            CaseDef::new("b/two", noop)
                .protos(&[Proto::Udp])
                .families(Family::BOTH),
        ];
        selection
            .apply(expand(&defs))
            .into_iter()
            .map(|c| c.name)
            .collect()
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
            filters: vec!["udp6/a".into(), "tcp4/a/one".into()],
            exact: true,
            ..Selection::default()
        };
        assert_eq!(names(&exact), ["tcp4/a/one"]);
    }

    #[test]
    fn bad_shards_are_refused_with_the_expected_form() {
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("expected I/N"), "{bad}: {err}");
        }
    }
}
