//! Namespaces made ahead of time, for
//! [`Namespaces::Ahead`](super::Namespaces::Ahead) and
//! [`Namespaces::Reuse`](super::Namespaces::Reuse): the keeper thread
//! keeps a bounded queue of fresh spares (one per worker and one more),
//! each made as a case's own would be, so that no case waits for one while
//! a CPU is free. A spare goes to one case. With `Ahead` it is released
//! after that case, as a namespace made on the case's path is (measured
//! slower than `Fresh` when every CPU already runs a case:
//! docs/benchmarks.md). With `Reuse` a case's namespace is used
//! again only after a check has proven it back to a fresh one's state
//! ([`Netns::residue`]); anything else is dropped. Spares no case took are
//! released when the pool stops ([`Pool::finish`], or dropping the pool
//! when a run ends early).
//!
//! The check runs on the case's own thread right after it has handed its
//! outcome over (so it is not part of the case's time), inside the
//! namespace already: no thread to start, no `setns()`, and the checks of
//! cases running at once run at once. A closed socket of some kinds (UDP,
//! netlink, the check's own) leaves the namespace's socket count only after
//! an RCU grace period, so a namespace whose only residue is that count
//! goes to the keeper thread, which reads the count again (from a file
//! opened once, without entering the namespace) until it is zero or [`LAG`]
//! has passed.
//!
//! The pool hands out only descriptors. Each case's thread is new and
//! enters its namespace with `setns()` ([`Netns::enter_current_thread`]),
//! so nothing about a thread carries over from one case to the next.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use netns_util::{FreshState, Netns, Residue, SocketCount, error_chain};

use super::{Release, fresh_netns_here};

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

/// Fresh spares made ahead, clean namespaces kept (with reuse), and the
/// keeper thread.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    keeper: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// What a fresh namespace holds, to check a used one against
    /// (`Reuse`); `None`: a used namespace is released unchecked (`Ahead`).
    fresh: Option<FreshState>,
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
    /// Spares no case took, released when the pool stopped.
    unused: usize,
    dropped: BTreeMap<&'static str, (usize, String)>,
}

impl Pool {
    /// A pool for `workers` cases at once with `--isolation ahead`: each
    /// namespace goes to one case and is released after it.
    pub(crate) fn ahead(workers: usize, release: Release) -> Result<Pool, String> {
        Pool::start(first()?, None, workers, release)
    }

    /// A pool for `workers` cases at once with `--isolation reuse`, its
    /// first namespace recorded as what a fresh one looks like.
    pub(crate) fn reusing(workers: usize, release: Release) -> Result<Pool, String> {
        let first = first()?;
        let fresh = first.netns.fresh_state().map_err(|e| {
            format!(
                "recording what a fresh namespace holds: {}",
                error_chain(&e)
            )
        })?;
        Pool::start(first, Some(fresh), workers, release)
    }

    fn start(
        first: Pooled,
        fresh: Option<FreshState>,
        workers: usize,
        release: Release,
    ) -> Result<Pool, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                spares: vec![first],
                ..State::default()
            }),
            changed: Condvar::new(),
            fresh,
            spares: workers.max(1) + 1,
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

    /// Takes back the namespace of a case that ended (on the case's
    /// thread, inside it): releases it (`Ahead`), or checks it and keeps
    /// it, hands it to the keeper to watch its socket count, or drops it
    /// (`Reuse`).
    pub(crate) fn give_back(&self, pooled: Pooled) {
        let lease = pooled.lease;
        match &self.shared.fresh {
            Some(fresh) => {
                let verdict = self.shared.check(pooled, Instant::now(), Some(fresh));
                self.shared.file(verdict);
            }
            None => self.shared.discard(pooled.netns),
        }
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
    /// the report: with `Ahead`, how many cases ran in a namespace made
    /// ahead and how many spares no case used; with `Reuse`, how many cases
    /// ran in reused and in fresh namespaces, and why namespaces were
    /// dropped, with one example each.
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
        if self.shared.fresh.is_none() {
            return format!(
                "namespaces: {} case(s) in a namespace made ahead; {} made ahead and never used",
                stats.fresh, stats.unused
            );
        }
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
                let verdict = self.check(pooled, ended, None);
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
        state.stats.unused = state.spares.len();
        let mut leftovers = std::mem::take(&mut state.clean);
        leftovers.append(&mut state.spares);
        leftovers.extend(state.counting.drain(..).map(|(pooled, _, _)| pooled));
        leftovers
            .into_iter()
            .for_each(|pooled| self.discard(pooled.netns));
    }

    /// The full check against `fresh`, or (`None`, the rest having been
    /// proven clean) only the socket count, read without opening sockets
    /// so that the check's own netlink sockets, which linger the same way,
    /// do not hold it up.
    fn check(&self, pooled: Pooled, ended: Instant, fresh: Option<&FreshState>) -> Verdict {
        let residue = match fresh {
            Some(fresh) => pooled.netns.residue(fresh, &pooled.count),
            None => pooled.count.read().map(|(used, _)| match used {
                0 => Vec::new(),
                used => vec![Residue::SocketsInUse(used)],
            }),
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

/// The pool's first namespace, made before any case starts so that a
/// host where none can be made is told at once.
fn first() -> Result<Pooled, String> {
    make().map_err(|e| format!("making the first namespace: {}", error_chain(&e)))
}

/// A fresh namespace with `lo` up and its socket count, made on a
/// short-lived thread as a case's own thread makes one
/// ([`fresh_netns_here`]), so that no thread of the pool leaves the
/// namespace it runs in; its lease is numbered when it is lent.
fn make() -> Result<Pooled, netns_util::Error> {
    thread::spawn(|| {
        let netns = fresh_netns_here()?;
        let count = netns.socket_count()?;
        Ok(Pooled {
            netns,
            count,
            lease: 0,
        })
    })
    .join()
    .map_err(netns_util::Error::panicked)?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test at a time makes namespaces here, so that each can count
    /// the process's namespace descriptors as its own.
    static MAKING: Mutex<()> = Mutex::new(());

    /// Holds [`MAKING`] when this host lets the process make namespaces;
    /// `None` (a skip, or a failure under `PORTRANGE_REQUIRE=root`) when it
    /// does not.
    fn may_make_namespaces() -> Option<MutexGuard<'static, ()>> {
        let guard = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        match Netns::new() {
            Ok(_) => Some(guard),
            Err(e) if e.is_no_privileges() => {
                require::skip_or_fail(require::Requirement::Root, &error_chain(&e));
                None
            }
            Err(e) => panic!("making a namespace: {}", error_chain(&e)),
        }
    }

    /// The network namespaces this process holds a descriptor of, by
    /// inode (the kernel's own handles, from `/proc/self/fd`).
    fn held() -> BTreeSet<String> {
        std::fs::read_dir("/proc/self/fd")
            .expect("list /proc/self/fd")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .map(|link| link.to_string_lossy().into_owned())
            .filter(|link| link.starts_with("net:["))
            .collect()
    }

    /// The namespace `pooled` holds, as [`held`] names it.
    fn name(pooled: &Pooled) -> String {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = pooled.netns.as_fd().as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("readlink");
        link.to_string_lossy().into_owned()
    }

    /// The spares' namespaces once the keeper has made `count` of them,
    /// and a moment later (in which it must make no more).
    fn spares_once_made(pool: &Pool, count: usize) -> BTreeSet<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.shared.lock().spares.len() < count {
            assert!(
                Instant::now() < deadline,
                "the keeper made no {count} spares"
            );
            thread::sleep(RETRY);
        }
        thread::sleep(Duration::from_millis(100));
        let state = pool.shared.lock();
        assert_eq!(
            state.spares.len(),
            count,
            "the keeper made more than {count}"
        );
        state.spares.iter().map(name).collect()
    }

    #[test]
    fn ahead_keeps_one_spare_per_worker_and_one_more() {
        let Some(_making) = may_make_namespaces() else {
            return;
        };
        let before = held();
        let pool = Pool::ahead(2, Release::AfterCase).unwrap();
        let spares = spares_once_made(&pool, 3);
        assert_eq!(spares.len(), 3, "three distinct namespaces: {spares:?}");
        assert_eq!(
            held().difference(&before).cloned().collect::<BTreeSet<_>>(),
            spares,
            "the process holds the spares and no other namespace of the pool"
        );
        let taken = pool.take().unwrap();
        assert!(spares.contains(&name(&taken)));
        let refilled = spares_once_made(&pool, 3);
        assert_eq!(
            held().difference(&before).count(),
            4,
            "three spares and the lent one"
        );
        pool.give_back(taken);
        assert_eq!(
            held().difference(&before).cloned().collect::<BTreeSet<_>>(),
            refilled
        );
        let note = pool.finish();
        assert_eq!(
            note,
            "namespaces: 1 case(s) in a namespace made ahead; 3 made ahead and never used"
        );
        assert_eq!(held(), before, "every namespace of the pool released");
    }

    #[test]
    fn ahead_gives_each_namespace_to_one_case_and_releases_it_after() {
        let Some(_making) = may_make_namespaces() else {
            return;
        };
        let before = held();
        let pool = Pool::ahead(1, Release::AfterCase).unwrap();
        // Eight cases at once, more than the queue holds: each gets a
        // namespace of its own (all alive together, so distinct handles
        // are distinct namespaces).
        let lent: Vec<Pooled> = (0..8).map(|_| pool.take().unwrap()).collect();
        let names: BTreeSet<String> = lent.iter().map(name).collect();
        assert_eq!(names.len(), 8, "{names:?}");
        // With the queue full the keeper makes none that could get the
        // number of one released meanwhile.
        spares_once_made(&pool, 2);
        for pooled in lent {
            let gone = name(&pooled);
            pool.give_back(pooled);
            assert!(!held().contains(&gone), "{gone} still held after its case");
        }
        let note = pool.finish();
        assert!(
            note.starts_with("namespaces: 8 case(s) in a namespace made ahead; "),
            "{note}"
        );
        assert_eq!(held(), before, "every namespace of the pool released");
    }

    #[test]
    fn ahead_releases_what_no_case_used_when_the_run_ends_early() {
        let Some(_making) = may_make_namespaces() else {
            return;
        };
        let before = held();
        let pool = Pool::ahead(3, Release::AfterCase).unwrap();
        let spares = spares_once_made(&pool, 4);
        // A case that panicked: its namespace never comes back.
        let lost = pool.take().unwrap();
        pool.abandon(lost.lease());
        drop(lost);
        // The run ends without finishing the pool (an error unwinding
        // through the runner): dropping it stops the keeper, which
        // releases every spare it made, including those made meanwhile.
        drop(pool);
        let left = held();
        assert!(
            left.is_disjoint(&spares),
            "spares still held: {:?}",
            left.intersection(&spares).collect::<Vec<_>>()
        );
        assert_eq!(left, before, "every namespace of the pool released");
    }
}
