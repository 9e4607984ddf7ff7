//! What randomized cases draw from: a seed, and how many configurations
//! each tries per variant.
//!
//! Set on the command line (`--seed`, `--random-configs`) or, where there
//! is no command line of ours (`cargo test`, the kselftest runner), by the
//! environment variables [`SEED_VAR`] and [`CONFIGS_VAR`]. The options
//! travel with the rest of the run's options into a VM, so a seed printed
//! by a run in a guest replays there too.

use std::env;
use std::time::Duration;

/// The environment variable naming the seed.
pub const SEED_VAR: &str = "PORTRANGE_SEED";

/// The environment variable naming the configurations per variant.
pub const CONFIGS_VAR: &str = "PORTRANGE_RANDOM_CONFIGS";

/// The settings of the randomized cases for one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Randomized {
    /// One seed for every randomized case; each case draws its own from the
    /// clock (and names it in its note) when `None`.
    pub seed: Option<u64>,
    /// Exactly this many configurations per variant; when `None`, the case's
    /// own default, cut short by its time budget.
    pub configurations: Option<usize>,
    /// The wall time each randomized case may spend when no count is asked:
    /// [`RUN_BUDGET`] shared equally among the run's randomized cases, set
    /// by the runner ([`Randomized::shared_among`]); `None` outside a run.
    #[serde(default)]
    pub share: Option<Duration>,
}

/// The wall time all randomized cases of one run may spend together when
/// no count is asked: under TCG a configuration takes milliseconds and the
/// cases share one emulated CPU, so a budget per case made their cost grow
/// with the number of variants (8 cases took 1.9 s of a 4.3 s case phase).
pub const RUN_BUDGET: Duration = Duration::from_secs(1);

impl Randomized {
    /// The settings the environment variables give.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(Randomized {
            seed: var(SEED_VAR)
                .map(|v| parse_seed(&v).map_err(|e| format!("{SEED_VAR}: {e}")))
                .transpose()?,
            configurations: var(CONFIGS_VAR)
                .map(|v| parse_configurations(&v).map_err(|e| format!("{CONFIGS_VAR}: {e}")))
                .transpose()?,
            share: None,
        })
    }

    /// `self`, with what it leaves unset taken from `fallback`.
    pub fn or(self, fallback: Randomized) -> Randomized {
        Randomized {
            seed: self.seed.or(fallback.seed),
            configurations: self.configurations.or(fallback.configurations),
            share: self.share.or(fallback.share),
        }
    }

    /// `self` with [`RUN_BUDGET`] shared among `cases` randomized cases
    /// (none when a count is asked, or no case is randomized).
    pub fn shared_among(self, cases: usize) -> Randomized {
        let share = match (self.configurations, u32::try_from(cases)) {
            (None, Ok(cases)) if cases > 0 => Some(RUN_BUDGET / cases),
            _ => None,
        };
        Randomized { share, ..self }
    }
}

/// A seed in decimal, or in hex with `0x`.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?} is not a seed (decimal, or hex with 0x): {e}"))
}

/// A positive number of configurations.
pub fn parse_configurations(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("0 configurations would check nothing".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?} is not a number of configurations: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed(" 0xff "), Ok(255));
        assert!(parse_seed("0xzz").unwrap_err().contains("not a seed"));
        assert!(parse_seed("-1").is_err());
    }

    #[test]
    fn zero_configurations_are_refused() {
        assert_eq!(parse_configurations("7"), Ok(7));
        assert!(
            parse_configurations("0")
                .unwrap_err()
                .contains("check nothing")
        );
        assert!(parse_configurations("many").is_err());
    }

    #[test]
    fn command_line_wins_over_environment() {
        let cli = Randomized {
            seed: Some(1),
            configurations: None,
            share: None,
        };
        let env = Randomized {
            seed: Some(2),
            configurations: Some(9),
            share: None,
        };
        assert_eq!(
            cli.or(env),
            Randomized {
                seed: Some(1),
                configurations: Some(9),
                share: None,
            }
        );
    }

    #[test]
    fn the_run_budget_is_shared_unless_a_count_is_asked() {
        let open = Randomized::default();
        assert_eq!(open.shared_among(8).share, Some(RUN_BUDGET / 8));
        assert_eq!(open.shared_among(0).share, None);
        let counted = Randomized {
            configurations: Some(7),
            ..open
        };
        assert_eq!(counted.shared_among(8).share, None);
    }
}
