//! Cases: how they are declared, expanded over the matrix, and what a case
//! body gets to work with.

use crate::profile::{Profile, Property};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use netns_util::Netns;
use nix::errno::Errno;
use socket2::Socket;

use crate::randomized::Randomized;
use crate::variant::{Family, Proto, Variant};

/// The namespace settings a case starts from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// `net.ipv4.ip_local_port_range` as `(low, high)`; the kernel's
    /// default (32768 60999) when `None`.
    pub port_range: Option<(u16, u16)>,
    /// `net.ipv4.ip_local_reserved_ports` (the sysctl's own syntax, e.g.
    /// `"40001,40003-40004"`); none when `None`.
    pub reserved_ports: Option<&'static str>,
}

impl Setup {
    /// A namespace whose `ip_local_port_range` is `lo..=hi`, nothing reserved.
    pub const fn netns_range(lo: u16, hi: u16) -> Setup {
        Setup {
            port_range: Some((lo, hi)),
            reserved_ports: None,
        }
    }

    /// These settings with `ports` reserved (the sysctl's own syntax).
    pub const fn reserved(self, ports: &'static str) -> Setup {
        Setup {
            reserved_ports: Some(ports),
            ..self
        }
    }
}

/// What a case checks, given the context it runs in.
type Checks = dyn Fn(&Ctx) -> Result<(), CaseError> + Send + Sync;

/// The body of a case: runs on a thread inside the case's own namespace.
#[derive(Clone)]
pub struct Body(Arc<Checks>);

impl Body {
    /// Runs the checks.
    pub fn run(&self, ctx: &Ctx) -> Result<(), CaseError> {
        (self.0)(ctx)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Body(..)")
    }
}

/// The property group of cases that deliberately hang, crash or flood the
/// console to test the harness itself; selections leave them out unless
/// asked (`--include-harness-faults`).
pub const HARNESS_FAULTS: &str = "harness_fault";

/// A case as written: one property, checked for each variant it applies to.
///
/// ```
/// # use harness::{CaseDef, CaseError, Ctx, Family, Setup};
/// fn round_trip(_: &Ctx) -> Result<(), CaseError> { Ok(()) }
/// fn effective(_: &Ctx, range: &(u16, u16)) -> Result<(), CaseError> { Ok(()) }
/// let netns = Setup { port_range: Some((40000, 40007)), reserved_ports: None };
/// let cases = [
///     CaseDef::new("sockopt/round_trip", round_trip).families(Family::BOTH),
///     CaseDef::with("clamp/one_port_range", (40003, 40003), effective).setup(netns),
/// ];
/// ```
#[derive(Debug, Clone)]
pub struct CaseDef {
    name: &'static str,
    protos: &'static [Proto],
    families: &'static [Family],
    setup: Setup,
    randomized: bool,
    body: Body,
}

impl CaseDef {
    /// The property `name`, as a path (`bind_zero/exhausts_with_eaddrinuse`),
    /// checked by `body` for every protocol and family in a namespace with
    /// the kernel's default settings.
    pub fn new(name: &'static str, body: fn(&Ctx) -> Result<(), CaseError>) -> CaseDef {
        CaseDef::of_body(name, Body(Arc::new(body)))
    }

    /// Like [`CaseDef::new`], with a body that checks the property for
    /// `param`: one row of a table of similar properties.
    pub fn with<P: Send + Sync + 'static>(
        name: &'static str,
        param: P,
        body: fn(&Ctx, &P) -> Result<(), CaseError>,
    ) -> CaseDef {
        CaseDef::of_body(name, Body(Arc::new(move |ctx: &Ctx| body(ctx, &param))))
    }

    fn of_body(name: &'static str, body: Body) -> CaseDef {
        CaseDef {
            name,
            protos: Proto::ALL,
            families: Family::ALL,
            setup: Setup::default(),
            randomized: false,
            body,
        }
    }

    /// Draws random configurations within the run's time budget: one of
    /// the cases [`RUN_BUDGET`](crate::randomized::RUN_BUDGET) is shared
    /// among.
    pub fn randomized(self) -> CaseDef {
        CaseDef {
            randomized: true,
            ..self
        }
    }

    /// Only for these protocols.
    pub fn protos(self, protos: &'static [Proto]) -> CaseDef {
        CaseDef { protos, ..self }
    }

    /// Only for these families.
    pub fn families(self, families: &'static [Family]) -> CaseDef {
        CaseDef { families, ..self }
    }

    /// Starting from these namespace settings.
    pub fn setup(self, setup: Setup) -> CaseDef {
        CaseDef { setup, ..self }
    }
}

/// A case expanded for one variant: what the runner schedules.
#[derive(Debug, Clone)]
pub struct Case {
    /// `<variant>/<property>`, the name used in every report and filter.
    pub name: String,
    /// The variant the body runs for.
    pub variant: Variant,
    /// Namespace settings.
    pub setup: Setup,
    /// Whether it shares the run's budget of randomized cases
    /// ([`CaseDef::randomized`]).
    pub randomized: bool,
    /// The checks.
    pub body: Body,
}

impl Case {
    /// Whether this is one of the [`HARNESS_FAULTS`] cases.
    pub fn is_harness_fault(&self) -> bool {
        self.name
            .split_once('/')
            .is_some_and(|(_, property)| property.starts_with(HARNESS_FAULTS))
    }
}

/// Expands definitions over their variants: variant-major, so a report
/// groups one protocol's cases together, definition order within.
pub fn expand(defs: &[CaseDef]) -> Vec<Case> {
    Variant::matrix(Proto::ALL, Family::ALL)
        .into_iter()
        .flat_map(|variant| {
            defs.iter()
                .filter(move |def| {
                    def.protos.contains(&variant.proto) && def.families.contains(&variant.family)
                })
                .map(move |def| Case {
                    name: format!("{variant}/{}", def.name),
                    variant,
                    setup: def.setup,
                    randomized: def.randomized,
                    body: def.body.clone(),
                })
        })
        .collect()
}

/// Why a case body stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// A check did not hold.
    Fail(String),
    /// The property cannot be checked on this kernel.
    Skip(String),
    /// The harness could not set the case up.
    Harness(String),
}

impl CaseError {
    /// This error with `context` before a failure's message
    /// (`"<context>: <message>"`), so a failure deep in a table says which
    /// row it was; a skip or a harness error is left as it is.
    pub fn in_context(self, context: impl fmt::Display) -> CaseError {
        match self {
            CaseError::Fail(message) => CaseError::Fail(format!("{context}: {message}")),
            other => other,
        }
    }
}

/// What a case body works with.
pub struct Ctx<'a> {
    /// The variant under test.
    pub variant: Variant,
    netns: &'a Netns,
    randomized: Randomized,
    pinned: Option<Profile>,
    profile: Cell<Option<(Property, Profile)>>,
    note: RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    /// A context for `variant` in `netns` (which the calling thread has
    /// entered), with the run's settings for randomized cases and the
    /// profile it pinned (`--expect-profile`), if any.
    pub fn new(
        variant: Variant,
        netns: &'a Netns,
        randomized: Randomized,
        pinned: Option<Profile>,
    ) -> Self {
        Ctx {
            variant,
            netns,
            randomized,
            pinned,
            profile: Cell::new(None),
            note: RefCell::new(None),
        }
    }

    /// The run's seed and configuration count for randomized cases.
    pub fn randomized(&self) -> Randomized {
        self.randomized
    }

    /// The profile the run pinned (`--expect-profile`), which every
    /// property must match; `None` when the kernel's release decides. A
    /// case that checks behaviour differing between profiles holds the
    /// kernel to this one alone when it is set.
    pub fn pinned_profile(&self) -> Option<Profile> {
        self.pinned
    }

    /// Records one line about what the case did (how many configurations
    /// it tried, with which seed), shown beside its result in every report.
    pub fn note(&self, text: String) {
        *self.note.borrow_mut() = Some(text);
    }

    /// The line recorded by [`Ctx::note`], if any.
    pub fn take_note(&self) -> Option<String> {
        self.note.borrow_mut().take()
    }

    /// Records the kernel profile the observed behaviour matched, for a
    /// property whose expected behaviour differs between kernels. Reports
    /// show it beside the case and summarise it for the run.
    pub fn matched_profile(&self, property: Property, profile: Profile) {
        self.profile.set(Some((property, profile)));
    }

    /// The property and profile recorded by [`Ctx::matched_profile`], if any.
    pub fn profile(&self) -> Option<(Property, Profile)> {
        self.profile.get()
    }

    /// Opens a socket of the variant under test.
    pub fn socket(&self) -> Result<Socket, CaseError> {
        self.variant
            .socket()
            .or_fail(&format!("socket() for {}", self.variant))
    }

    /// The loopback address of the variant's family with `port`.
    pub fn loopback(&self, port: u16) -> SocketAddr {
        self.variant.loopback(port)
    }

    /// Changes the namespace's `net.ipv4.ip_local_port_range` mid-case
    /// (written from the body's own thread, which is inside the namespace:
    /// cheap enough for thousands of configurations).
    pub fn set_netns_port_range(&self, lo: u16, hi: u16) -> Result<(), CaseError> {
        self.netns
            .sysctl_write("net.ipv4.ip_local_port_range", &format!("{lo} {hi}"))
            .map_err(|e| CaseError::Harness(netns_util::error_chain(&e)))
    }

    /// Changes the namespace's `net.ipv4.ip_local_reserved_ports` mid-case
    /// (the sysctl's own syntax, `""` for none).
    pub fn set_netns_reserved_ports(&self, ports: &str) -> Result<(), CaseError> {
        self.netns
            .sysctl_write("net.ipv4.ip_local_reserved_ports", ports)
            .map_err(|e| CaseError::Harness(netns_util::error_chain(&e)))
    }
}

/// Turns an I/O error into a failure that names the operation.
pub trait OrFail<T> {
    /// Maps `Err(e)` to `CaseError::Fail("<what>: <e>")`.
    fn or_fail(self, what: &str) -> Result<T, CaseError>;
}

impl<T> OrFail<T> for io::Result<T> {
    fn or_fail(self, what: &str) -> Result<T, CaseError> {
        self.map_err(|e| CaseError::Fail(format!("{what}: {}", describe(&e))))
    }
}

/// An I/O error as `EINVAL (Invalid argument)`, so messages name the errno.
pub fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => {
            let errno = Errno::from_raw(code);
            format!("{errno:?} ({})", errno.desc())
        }
        None => error.to_string(),
    }
}

/// Checks that `result` failed with exactly `expected`.
pub fn expect_errno<T: std::fmt::Debug>(
    result: io::Result<T>,
    expected: Errno,
    what: &str,
) -> Result<(), CaseError> {
    match result {
        Err(e) if e.raw_os_error() == Some(expected as i32) => Ok(()),
        Err(e) => Err(CaseError::Fail(format!(
            "{what}: expected {expected:?}, got {}",
            describe(&e)
        ))),
        Ok(value) => Err(CaseError::Fail(format!(
            "{what}: expected {expected:?}, but it succeeded ({value:?})"
        ))),
    }
}

/// Fails the case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::CaseError::Fail(format!($($msg)+)));
        }
    };
}

/// Fails the case unless `actual == expected`, naming both.
#[macro_export]
macro_rules! check_eq {
    ($actual:expr, $expected:expr, $($msg:tt)+) => {
        match (&$actual, &$expected) {
            (actual, expected) => {
                if actual != expected {
                    return Err($crate::CaseError::Fail(format!(
                        "{}: expected {:?}, got {:?}",
                        format!($($msg)+),
                        expected,
                        actual
                    )));
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &Ctx) -> Result<(), CaseError> {
        Ok(())
    }

    #[test]
    fn expansion_names_cases_variant_first_and_respects_applicability() {
        let defs = [
            CaseDef::new("a/every", noop).families(Family::BOTH),
            CaseDef::new("b/stream_v6", noop)
                .protos(Proto::STREAM)
                .families(&[Family::V6]),
        ];
        let names: Vec<String> = expand(&defs).into_iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 8 + 3);
        assert_eq!(
            &names[..3],
            ["tcp4/a/every", "tcp6/a/every", "tcp6/b/stream_v6"]
        );
        assert!(!names.contains(&"udp6/b/stream_v6".to_owned()));
    }

    #[test]
    fn context_prefixes_failures_only() {
        let fail = CaseError::Fail("expected 1, got 2".into());
        assert_eq!(
            fail.in_context("row 3"),
            CaseError::Fail("row 3: expected 1, got 2".into())
        );
        for other in [
            CaseError::Skip("no SCTP".into()),
            CaseError::Harness("no netns".into()),
        ] {
            assert_eq!(other.clone().in_context("row 3"), other);
        }
    }

    #[test]
    fn errno_mismatch_names_both_errnos() {
        let got: io::Result<()> = Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        let err = expect_errno(got, Errno::EINVAL, "setsockopt").unwrap_err();
        assert_eq!(
            err,
            CaseError::Fail(
                "setsockopt: expected EINVAL, got EADDRINUSE (Address already in use)".into()
            )
        );
        assert_eq!(
            expect_errno(Ok(5), Errno::EINVAL, "bind").unwrap_err(),
            CaseError::Fail("bind: expected EINVAL, but it succeeded (5)".into())
        );
    }
}
