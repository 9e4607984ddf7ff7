//! Namespaces for [`Namespaces::Reuse`](super::Namespaces::Reuse): a case's
//! namespace is used again only after a check has proven it back to a fresh
//! one's state ([`Netns::residue`]); anything else is dropped, and fresh
//! namespaces are made ahead of time so that no case waits for one.
//!
//! The check runs on the case's own thread right after it has handed its
//! outcome over (so it is not part of the case's time), inside the
//! namespace already: no thread to start, no `setns()`, and the checks of
//! cases running at once run at once. A closed socket of some kinds (UDP,
//! netlink, the check's own) leaves the namespace's socket count only after
//! an RCU grace period, so a namespace whose only residue is that count
//! goes to the keeper thread, which reads the count again (from a file
//! opened once, without entering the namespace) until it is zero or [`LAG`]
//! has passed. The keeper also keeps one fresh spare per worker.
//!
//! The pool hands out only descriptors. Each case's thread is new and
//! enters its namespace with `setns()` ([`Netns::enter_current_thread`]),
//! so nothing about a thread carries over from one case to the next.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netns_util::{FreshState, Netns, Residue, SocketCount, error_chain};

use super::Release;

/// How long after its case a namespace whose only residue is the socket
/// count may take to show a count of zero before it is dropped. A grace
/// period takes milliseconds; this leaves room for a busy machine.
const LAG: Duration = Duration::from_millis(500);

/// How long the keeper waits before reading a count again.
const RETRY: Duration = Duration::from_millis(2);

/// How long the keeper waits before trying again to make a spare after
/// making one failed.
const MAKE_RETRY: Duration = Duration::from_millis(20);

/// How long [`Pool::finish`] waits for cases still checking their
/// namespaces (a timed-out case is not waited for: it never checks).
const FINISH: Duration = Duration::from_secs(5);

/// A namespace of the pool, lent to one case.
pub(crate) struct Pooled {
    /// The namespace.
    pub(crate) netns: Netns,
    count: SocketCount,
    lease: u64,
}

impl Pooled {
    /// The number of this loan, for [`Pool::abandon`].
    pub(crate) fn lease(&self) -> u64 {
        self.lease
    }
}

/// Fresh spares made ahead, clean namespaces kept, and the keeper thread.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    keeper: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    fresh: FreshState,
    spares: usize,
    release: Release,
}

#[derive(Default)]
struct State {
    clean: Vec<Pooled>,
    spares: Vec<Pooled>,
    /// Namespaces whose only residue is the socket count, with the time
    /// their case ended and when to read the count next.
    counting: VecDeque<(Pooled, Instant, Instant)>,
    /// Leases not yet given back or abandoned.
    lent: BTreeSet<u64>,
    next_lease: u64,
    /// Why making the last spare failed, and when to try again.
    making_failed: Option<(String, Instant)>,
    shutdown: bool,
    stats: Stats,
}

/// What the pool did, for the report's note.
#[derive(Default)]
struct Stats {
    reused: usize,
    fresh: usize,
    kept: usize,
    dropped: BTreeMap<&'static str, (usize, String)>,
}

impl Pool {
    /// A pool for `workers` cases at once, its first namespace made and
    /// recorded as what a fresh one looks like.
    pub(crate) fn new(workers: usize, release: Release) -> Result<Pool, String> {
        let first =
            make().map_err(|e| format!("making the first namespace: {}", error_chain(&e)))?;
        let fresh = first.netns.fresh_state().map_err(|e| {
            format!(
                "recording what a fresh namespace holds: {}",
                error_chain(&e)
            )
        })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                spares: vec![first],
                ..State::default()
            }),
            changed: Condvar::new(),
            fresh,
            spares: workers.max(1),
            release,
        });
        let keeper = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("netns-pool".into())
                .spawn(move || shared.keep())
                .map_err(|e| format!("cannot start the namespace pool's thread: {e}"))?
        };
        Ok(Pool {
            shared,
            keeper: Mutex::new(Some(keeper)),
        })
    }

    /// A namespace for the next case (`lo` up, the port sysctls a fresh
    /// one's): a proven-clean one when there is one, else a fresh spare
    /// (waiting for the keeper to make one).
    pub(crate) fn take(&self) -> Result<Pooled, String> {
        let mut state = self.shared.lock();
        loop {
            let taken = match state.clean.pop() {
                Some(pooled) => {
                    state.stats.reused += 1;
                    Some(pooled)
                }
                None => state.spares.pop().inspect(|_| {
                    state.stats.fresh += 1;
                    self.shared.changed.notify_all();
                }),
            };
            if let Some(mut pooled) = taken {
                state.next_lease += 1;
                pooled.lease = state.next_lease;
                state.lent.insert(pooled.lease);
                return Ok(pooled);
            }
            // Without spares, wait for namespaces still out (being checked
            // or counted) to come back; with none out, nothing will.
            if let Some((reason, _)) = &state.making_failed {
                if state.lent.is_empty() && state.counting.is_empty() {
                    return Err(format!("making a namespace ahead of time: {reason}"));
                }
            }
            state = self.shared.wait(state);
        }
    }

    /// Checks the namespace of a case that ended (from the case's thread,
    /// inside it) and keeps it, hands it to the keeper to watch its socket
    /// count, or drops it.
    pub(crate) fn give_back(&self, pooled: Pooled) {
        let lease = pooled.lease;
        let ended = Instant::now();
        let verdict = self.shared.check(pooled, ended, false);
        self.shared.file(verdict);
        self.abandon(lease);
    }

    /// Ends lease `lease` without a namespace coming back: its case
    /// panicked (the namespace was dropped) or timed out (its thread keeps
    /// it). Idempotent.
    pub(crate) fn abandon(&self, lease: u64) {
        let mut state = self.shared.lock();
        state.lent.remove(&lease);
        self.shared.changed.notify_all();
    }

    /// Waits (up to [`FINISH`]) for cases still checking their namespaces,
    /// stops the keeper and releases every namespace; returns one line for
    /// the report: how many cases ran in reused and in fresh namespaces,
    /// and why namespaces were dropped, with one example each.
    pub(crate) fn finish(&self) -> String {
        let deadline = Instant::now() + FINISH;
        let mut state = self.shared.lock();
        while !state.lent.is_empty() && Instant::now() < deadline {
            state = self
                .shared
                .changed
                .wait_timeout(state, RETRY)
                .map_or_else(|p| p.into_inner().0, |(s, _)| s);
        }
        drop(state);
        self.stop();
        let state = self.shared.lock();
        let stats = &state.stats;
        let mut note = format!(
            "namespaces: {} case(s) in a reused namespace, {} in a fresh one; {} kept after a clean check",
            stats.reused, stats.fresh, stats.kept
        );
        if !stats.dropped.is_empty() {
            let reasons: Vec<String> = stats
                .dropped
                .iter()
                .map(|(kind, (count, example))| format!("{count} for {kind} (e.g. {example})"))
                .collect();
            note.push_str(&format!(", dropped {}", reasons.join(", ")));
        }
        note
    }

    fn stop(&self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(keeper) = keeper {
            // A panicking keeper has nothing left to hand out.
            let _ = keeper.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The keeper's loop: read the counts that are due, top up the spares,
    /// sleep until the next count is due or something changes.
    fn keep(&self) {
        let mut state = self.lock();
        while !state.shutdown {
            let now = Instant::now();
            let due = state.counting.iter().position(|(_, _, due)| *due <= now);
            if let Some((pooled, ended, _)) = due.and_then(|i| state.counting.remove(i)) {
                drop(state);
                let verdict = self.check(pooled, ended, true);
                self.file(verdict);
                state = self.lock();
            } else if state.spares.len() < self.spares
                && state
                    .making_failed
                    .as_ref()
                    .is_none_or(|(_, retry)| *retry <= now)
            {
                drop(state);
                let made = make();
                state = self.lock();
                match made {
                    Ok(pooled) => {
                        state.spares.push(pooled);
                        state.making_failed = None;
                    }
                    // Namespaces dropped meanwhile may make room (a limit
                    // such as user.max_net_namespaces): try again later.
                    Err(e) => state.making_failed = Some((error_chain(&e), now + MAKE_RETRY)),
                }
                self.changed.notify_all();
            } else {
                let retry = state
                    .making_failed
                    .as_ref()
                    .filter(|_| state.spares.len() < self.spares)
                    .map(|(_, retry)| *retry);
                let next = state
                    .counting
                    .iter()
                    .map(|(_, _, due)| *due)
                    .chain(retry)
                    .min();
                state = match next {
                    Some(due) => self
                        .changed
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .map_or_else(|p| p.into_inner().0, |(s, _)| s),
                    None => self.wait(state),
                };
            }
        }
        let state = &mut *state;
        let mut leftovers = std::mem::take(&mut state.clean);
        leftovers.append(&mut state.spares);
        leftovers.extend(state.counting.drain(..).map(|(pooled, _, _)| pooled));
        leftovers
            .into_iter()
            .for_each(|pooled| self.discard(pooled.netns));
    }

    /// The full check, or (`counted_only`, the rest having been proven
    /// clean) only the socket count, read without opening sockets so that
    /// the check's own netlink sockets, which linger the same way, do not
    /// hold it up.
    fn check(&self, pooled: Pooled, ended: Instant, counted_only: bool) -> Verdict {
        let residue = if counted_only {
            pooled.count.read().map(|(used, _)| match used {
                0 => Vec::new(),
                used => vec![Residue::SocketsInUse(used)],
            })
        } else {
            pooled.netns.residue(&self.fresh, &pooled.count)
        };
        match residue {
            Ok(residue) if residue.is_empty() => Verdict::Clean(pooled),
            Ok(residue) if only_counted(&residue) && ended.elapsed() < LAG => {
                Verdict::Later(pooled, ended)
            }
            Ok(residue) => {
                let example = residue
                    .iter()
                    .map(Residue::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                // Named by its most telling residue: the count goes with
                // every other kind.
                let kind = residue
                    .iter()
                    .find(|r| !matches!(r, Residue::SocketsInUse(_)))
                    .unwrap_or(&residue[0])
                    .kind();
                Verdict::Dropped(pooled, kind, example)
            }
            Err(e) => Verdict::Dropped(pooled, "a check that failed", error_chain(&e)),
        }
    }

    fn file(&self, verdict: Verdict) {
        match verdict {
            Verdict::Clean(pooled) => {
                let mut state = self.lock();
                state.stats.kept += 1;
                state.clean.push(pooled);
            }
            Verdict::Later(pooled, ended) => {
                let due = Instant::now() + RETRY;
                self.lock().counting.push_back((pooled, ended, due));
            }
            Verdict::Dropped(pooled, kind, example) => {
                self.discard(pooled.netns);
                let mut state = self.lock();
                let entry = state.stats.dropped.entry(kind).or_insert((0, example));
                entry.0 += 1;
            }
        }
        self.changed.notify_all();
    }

    fn discard(&self, netns: Netns) {
        match self.release {
            Release::AfterCase => drop(netns),
            // See Release::AtExit: the kernel never has to tear it down.
            Release::AtExit => std::mem::forget(netns),
        }
    }
}

/// Whether the only residue is sockets still counted, which closed sockets
/// leave for an RCU grace period.
fn only_counted(residue: &[Residue]) -> bool {
    residue
        .iter()
        .all(|residue| matches!(residue, Residue::SocketsInUse(_)))
}

enum Verdict {
    Clean(Pooled),
    Later(Pooled, Instant),
    Dropped(Pooled, &'static str, String),
}

/// A fresh namespace with `lo` up and its socket count, made on
/// short-lived threads; its lease is numbered when it is lent.
fn make() -> Result<Pooled, netns_util::Error> {
    let netns = Netns::new()?;
    netns.loopback_up()?;
    let count = netns.socket_count()?;
    Ok(Pooled {
        netns,
        count,
        lease: 0,
    })
}
