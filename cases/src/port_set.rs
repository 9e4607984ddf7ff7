//! Sets of ports as people read them: runs folded (`20000-20003, 20007`),
//! for failure messages and the egress scenario's report alike.

/// `ports` (in any order, repeats ignored) as sorted runs: `a-b` for a run,
/// `a` for a lone port, joined by `, `; `none` for no port.
pub fn show(ports: impl IntoIterator<Item = u16>) -> String {
    let mut sorted: Vec<u16> = ports.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for port in sorted {
        match runs.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(port) => *end = port,
            _ => runs.push((port, port)),
        }
    }
    if runs.is_empty() {
        return "none".into();
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::show;

    #[test]
    fn port_sets_print_as_runs() {
        let ports: BTreeSet<u16> = [1, 2, 3, 5, 7, 8].into_iter().collect();
        assert_eq!(show(ports), "1-3, 5, 7-8");
        assert_eq!(show(BTreeSet::new()), "none");
        assert_eq!(show([5]), "5");
        assert_eq!(show([7, 3, 4, 5, 9, 10, 4]), "3-5, 7, 9-10");
        assert_eq!(show([65534, 65535]), "65534-65535");
    }
}
