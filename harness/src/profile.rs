//! Kernel profiles: named sets of expectations for the properties whose
//! correct behaviour differs between kernel generations (SPEC.md, "Behaviour
//! that differs between kernels"). Cases and probes record which profile
//! the kernel matched; a property matching none is a failure naming the
//! closest.

/// 6.1 stable with the backport (and Android kernels built on it):
/// connect() scans the socket range in steps of 2, `lo`'s parity first;
/// MPTCP sockets do not accept the option (ENOPROTOOPT).
pub const STABLE_6_1: &str = "stable-6.1";

/// Upstream since 6.3 (6.12, ...): with a socket range set, connect()
/// scans port by port with no parity preference; MPTCP accepts the option.
pub const UPSTREAM: &str = "upstream";
