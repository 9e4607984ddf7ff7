//! Namespaces for [`Namespaces::Reuse`](super::Namespaces::Reuse): a case's
//! namespace is used again only after a check has proven it back to a fresh
//! one's state ([`Netns::residue`]); anything else is dropped, and fresh
//! namespaces are made ahead of time so that no case waits for one.
//!
//! One keeper thread does both jobs, in this order: it checks the
//! namespaces cases gave back (on a short-lived thread that enters each by
//! its descriptor), and tops the stock of fresh spares up to one per
//! worker. Checking off the case's path matters because a closed socket of
//! some kinds (UDP, netlink) leaves the namespace's socket count only after
//! an RCU grace period: a namespace whose only residue is that count is
//! looked at again until [`LAG`] has passed since its case ended.
//!
//! The pool hands out only descriptors. Each case's thread is new and
//! enters its namespace with `setns()` ([`Netns::enter_current_thread`]),
//! so nothing about a thread carries over from one case to the next.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netns_util::{FreshState, Netns, Residue, SocketCount, error_chain};

use super::Release;

/// How long after its case a namespace whose only residue is the socket
/// count may take to show a count of zero before it is dropped. Under TCG
/// a grace period takes a few milliseconds; this leaves room for a busy
/// machine.
const LAG: Duration = Duration::from_millis(500);

/// How long the keeper waits before looking again at a namespace whose
/// count is still catching up.
const RETRY: Duration = Duration::from_millis(2);

/// A namespace of the pool, with its socket count (open once, read from
/// the keeper's thread without entering the namespace).
pub(crate) struct Pooled {
    /// The namespace.
    pub(crate) netns: Netns,
    count: SocketCount,
}

/// Fresh spares made ahead, clean namespaces kept, and the keeper thread.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    keeper: Option<JoinHandle<()>>,
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
    returned: VecDeque<Returned>,
    making_failed: Option<String>,
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
            keeper: Some(keeper),
        })
    }

    /// A namespace for the next case (`lo` up, the port sysctls a fresh
    /// one's): a proven-clean one when there is one, else a fresh spare
    /// (waiting for the keeper to make one).
    pub(crate) fn take(&self) -> Result<Pooled, String> {
        let mut state = self.shared.lock();
        loop {
            if let Some(pooled) = state.clean.pop() {
                state.stats.reused += 1;
                return Ok(pooled);
            }
            if let Some(pooled) = state.spares.pop() {
                state.stats.fresh += 1;
                self.shared.changed.notify_all();
                return Ok(pooled);
            }
            if let Some(reason) = &state.making_failed {
                return Err(format!("making a namespace ahead of time: {reason}"));
            }
            state = self.shared.wait(state);
        }
    }

    /// Gives back the namespace of a case that ended (not one that timed
    /// out or panicked: those are dropped with their thread), to be
    /// checked and kept or dropped.
    pub(crate) fn give_back(&self, pooled: Pooled) {
        let mut state = self.shared.lock();
        let now = Instant::now();
        state.returned.push_back(Returned {
            pooled,
            ended: now,
            due: now,
            counted_only: false,
        });
        self.shared.changed.notify_all();
    }

    /// Stops the keeper (which checks what was given back after the last
    /// case) and releases every namespace; returns one line for the report:
    /// how many cases ran in reused and in fresh namespaces, and why
    /// namespaces were dropped, with one example each.
    pub(crate) fn finish(mut self) -> String {
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
}

impl Pool {
    fn stop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(keeper) = self.keeper.take() {
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

    /// The keeper's loop: check what came back and is due, top up the
    /// spares, sleep until the next is due or something changes.
    fn keep(&self) {
        let mut state = self.lock();
        while !state.shutdown {
            let now = Instant::now();
            let due = state.returned.iter().position(|r| r.due <= now);
            if let Some(returned) = due.and_then(|i| state.returned.remove(i)) {
                drop(state);
                let verdict = self.check(returned);
                state = self.lock();
                match verdict {
                    Verdict::Clean(pooled) => {
                        state.stats.kept += 1;
                        state.clean.push(pooled);
                        self.changed.notify_all();
                    }
                    Verdict::Later(returned) => state.returned.push_back(returned),
                    Verdict::Dropped(pooled, kind, example) => {
                        drop(state);
                        self.discard(pooled.netns);
                        self.count_drop(kind, example);
                        state = self.lock();
                    }
                }
            } else if state.spares.len() < self.spares && state.making_failed.is_none() {
                drop(state);
                let made = make();
                state = self.lock();
                match made {
                    Ok(pooled) => state.spares.push(pooled),
                    Err(e) => state.making_failed = Some(error_chain(&e)),
                }
                self.changed.notify_all();
            } else {
                let next = state.returned.iter().map(|r| r.due).min();
                state = match next {
                    Some(due) => self
                        .changed
                        .wait_timeout(state, due.saturating_duration_since(now))
                        .map_or_else(|p| p.into_inner().0, |(s, _)| s),
                    None => self.wait(state),
                };
            }
        }
        // Namespaces given back after the last case still get their full
        // check, so that the note counts every residue a case left; then
        // everything is released.
        let pending: Vec<Returned> = state.returned.drain(..).collect();
        let mut leftovers = std::mem::take(&mut state.clean);
        leftovers.append(&mut state.spares);
        drop(state);
        for returned in pending {
            if returned.counted_only {
                leftovers.push(returned.pooled);
                continue;
            }
            match self.check(returned) {
                Verdict::Clean(pooled) => {
                    self.lock().stats.kept += 1;
                    leftovers.push(pooled);
                }
                Verdict::Later(returned) => leftovers.push(returned.pooled),
                Verdict::Dropped(pooled, kind, example) => {
                    self.count_drop(kind, example);
                    leftovers.push(pooled);
                }
            }
        }
        leftovers
            .into_iter()
            .for_each(|pooled| self.discard(pooled.netns));
    }

    fn count_drop(&self, kind: &'static str, example: String) {
        let mut state = self.lock();
        let entry = state.stats.dropped.entry(kind).or_insert((0, example));
        entry.0 += 1;
    }

    /// The full check; a namespace whose only residue is the socket count
    /// then waits for that count alone (read without opening sockets, so
    /// the check's own netlink sockets, which linger the same way, do not
    /// hold it up), until [`LAG`] after its case ended.
    fn check(&self, returned: Returned) -> Verdict {
        let Returned {
            pooled,
            ended,
            counted_only,
            ..
        } = returned;
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
                Verdict::Later(Returned {
                    pooled,
                    ended,
                    due: Instant::now() + RETRY,
                    counted_only: true,
                })
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

/// A namespace given back, waiting for its check.
struct Returned {
    pooled: Pooled,
    /// When its case ended.
    ended: Instant,
    /// When to look at it next.
    due: Instant,
    /// Whether the full check found only the socket count, so that only
    /// the count is left to look at.
    counted_only: bool,
}

enum Verdict {
    Clean(Pooled),
    Later(Returned),
    Dropped(Pooled, &'static str, String),
}

/// A fresh namespace with `lo` up and its socket count, made on
/// short-lived threads.
fn make() -> Result<Pooled, netns_util::Error> {
    let netns = Netns::new()?;
    netns.loopback_up()?;
    let count = netns.socket_count()?;
    Ok(Pooled { netns, count })
}
