//! Kconfig files as data: the options a fragment requires and the values a
//! `.config` ended up with.

use std::collections::BTreeMap;

/// One option a fragment sets: `CONFIG_X=value`, or `n` for
/// `# CONFIG_X is not set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The option, with its `CONFIG_` prefix.
    pub name: String,
    /// The value asked for (`y`, `4`, `"text"`, or `n`).
    pub value: String,
}

/// Reads `CONFIG_X=v` and `# CONFIG_X is not set` lines; every other line
/// (comments, blanks) is ignored. The result maps option -> value, unset
/// options as `n`.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# ") {
                let name = rest.strip_suffix(" is not set")?;
                name.starts_with("CONFIG_")
                    .then(|| (name.to_owned(), "n".to_owned()))
            } else {
                let (name, value) = line.split_once('=')?;
                name.starts_with("CONFIG_")
                    .then(|| (name.to_owned(), value.to_owned()))
            }
        })
        .collect()
}

/// The options of a fragment, in file order.
pub fn requirements(fragment: &str) -> Vec<Requirement> {
    let values = parse(fragment);
    let mut seen = std::collections::BTreeSet::new();
    fragment
        .lines()
        .filter_map(|line| parse(line).into_iter().next())
        .filter(|(name, _)| seen.insert(name.clone()))
        .map(|(name, _)| Requirement {
            value: values[&name].clone(),
            name,
        })
        .collect()
}

/// The requirements that `config` (a parsed `.config`) does not meet, each
/// with the value it has there (`n` when absent).
pub fn unmet<'a>(
    required: &'a [Requirement],
    config: &BTreeMap<String, String>,
) -> Vec<(&'a Requirement, String)> {
    required
        .iter()
        .filter_map(|r| {
            let got = config.get(&r.name).map_or("n", String::as_str);
            (got != r.value).then(|| (r, got.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAGMENT: &str =
        "# comment\nCONFIG_NET=y\n\nCONFIG_SERIAL_8250_NR_UARTS=4\n# CONFIG_MODULES is not set\n";

    #[test]
    fn requirements_keep_order_and_unset_means_n() {
        let got = requirements(FRAGMENT);
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.name.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("CONFIG_NET", "y"),
                ("CONFIG_SERIAL_8250_NR_UARTS", "4"),
                ("CONFIG_MODULES", "n")
            ]
        );
    }

    #[test]
    fn unmet_names_missing_wrong_and_unexpected_options() {
        let required = requirements(FRAGMENT);
        let config = parse("CONFIG_SERIAL_8250_NR_UARTS=1\nCONFIG_MODULES=y\n");
        let got: Vec<(&str, String)> = unmet(&required, &config)
            .into_iter()
            .map(|(r, v)| (r.name.as_str(), v))
            .collect();
        assert_eq!(
            got,
            [
                ("CONFIG_NET", "n".to_owned()),
                ("CONFIG_SERIAL_8250_NR_UARTS", "1".to_owned()),
                ("CONFIG_MODULES", "y".to_owned())
            ]
        );
    }

    #[test]
    fn met_requirements_are_not_reported() {
        let required = requirements(FRAGMENT);
        let config =
            parse("CONFIG_NET=y\nCONFIG_SERIAL_8250_NR_UARTS=4\n# CONFIG_MODULES is not set\n");
        assert!(unmet(&required, &config).is_empty());
    }
}
