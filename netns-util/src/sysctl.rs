//! Sysctls of the calling thread's network namespace.
//!
//! Private on purpose: callers reach these only through
//! [`Netns`](crate::Netns), whose thread has entered a namespace this crate
//! created, so the host's own settings can never be written by mistake.

use std::fs;

use crate::Error;

fn path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Writes `value` and a newline, as sysctl(8) does: a zero-byte write would
/// leave the setting unchanged, so an empty value could not clear a list.
pub(crate) fn write(key: &str, value: &str) -> Result<(), Error> {
    let path = path(key);
    fs::write(&path, format!("{value}\n")).map_err(|source| Error::Proc {
        what: "write",
        path,
        source,
    })
}

pub(crate) fn read(key: &str) -> Result<String, Error> {
    let path = path(key);
    fs::read_to_string(&path)
        .map(|s| s.trim_end().to_owned())
        .map_err(|source| Error::Proc {
            what: "read",
            path,
            source,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dotted_key_maps_to_proc_path() {
        assert_eq!(
            super::path("net.ipv4.ip_local_port_range"),
            "/proc/sys/net/ipv4/ip_local_port_range"
        );
    }
}
