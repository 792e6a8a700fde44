//! CPU-heavy work (a search the cache does not hold, a simulator page with a prompt) off the
//! actix workers: a few dedicated threads at a lower scheduling priority, and a bound on the
//! jobs admitted at once. A request waiting for its turn awaits a semaphore and holds no
//! thread, so the workers stay free for the pages that cost little: during a storm of
//! searches, the guide pages keep their pace and the searches share what is left.
//!
//! Handing work to the pool and back costs two thread wake-ups, as much as a simulator page and
//! a third of a search: when nothing competes with it (no light page served lately), bounded
//! work runs on the caller's worker instead (`run_or_here`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How much nicer than the rest of the process the work threads (and the password hashing
/// threads) are.
pub const NICER_BY: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("the {0} threads stopped")]
    Stopped(&'static str),
    #[error("a {0} job panicked")]
    Panicked(&'static str),
}

pub struct CpuPool {
    name: &'static str,
    /// Jobs handed to the threads (queued or running) at most; the others wait their turn here.
    admission: Arc<Semaphore>,
    /// The semaphore's permits when no job is admitted.
    #[cfg(test)]
    admitted: usize,
    jobs: std::sync::mpsc::Sender<Job>,
    /// When a light page (`light_request`) was last served: milliseconds since `started`.
    last_light: AtomicU64,
    started: Instant,
}

/// How long after a light page the workers count as busy serving such pages.
pub const LIGHT_TRAFFIC_WINDOW: Duration = Duration::from_millis(100);

impl CpuPool {
    /// One thread per core, each at most one job ahead: `run` never keeps more than twice the
    /// cores busy or queued.
    pub fn per_core(name: &'static str) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self::new(name, cores, cores * 2)
    }

    /// `threads` threads named `name-N`, at most `admitted` jobs handed to them at once.
    pub fn new(name: &'static str, threads: usize, admitted: usize) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    lower_priority(name);
                    loop {
                        // The lock is held while waiting for the next job, not while running it.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            // The pool was dropped.
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            name,
            admission: Arc::new(Semaphore::new(admitted.max(1))),
            #[cfg(test)]
            admitted: admitted.max(1),
            jobs,
            // Long enough ago: no light page served yet.
            last_light: AtomicU64::new(0),
            started: Instant::now()
                .checked_sub(LIGHT_TRAFFIC_WINDOW)
                .unwrap_or_else(Instant::now),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A light page (a guide, an asset: served from memory) is being served. Costs a clock read
    /// and, at most once a millisecond, a store.
    pub fn light_request(&self) {
        let now = self.now_ms();
        if self.last_light.load(Ordering::Relaxed) != now {
            self.last_light.store(now, Ordering::Relaxed);
        }
    }

    /// Nothing competes with the caller's worker: no light page served within
    /// `LIGHT_TRAFFIC_WINDOW`. Work that would otherwise go to the pool (a search, a simulator
    /// page) may then run on the worker, which saves the two thread wake-ups of `run`. When
    /// pages that cost little are being served (the storm of searches next to guide readers
    /// that `bench/run storm` measures), it takes its turn on the pool, so that the workers stay
    /// free for those pages. Whether the pool has work does not count: with the pool's own
    /// pages in it, a run of heavy pages that once went there (a light page seen) would stay
    /// there after the light pages stopped, each keeping the pool busy for the next.
    pub fn quiet(&self) -> bool {
        self.now_ms()
            .saturating_sub(self.last_light.load(Ordering::Relaxed))
            >= LIGHT_TRAFFIC_WINDOW.as_millis() as u64
    }

    /// No job queued or running (the tests observe the admission with it).
    #[cfg(test)]
    fn idle(&self) -> bool {
        self.admission.available_permits() == self.admitted
    }

    /// Runs `work` on the caller's worker when it is `bounded` (its cost does not grow with what
    /// a client sends) and nothing competes with the worker (`quiet`); otherwise on the pool
    /// (`run`). The pages that cost more than a guide (a search, a simulator page) take this way.
    pub async fn run_or_here<T: Send + 'static>(
        &self,
        bounded: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CpuError> {
        if bounded && self.quiet() {
            return Ok(work());
        }
        self.run(work).await
    }

    /// Runs `work` on one of the pool's threads once a place is free, and returns its result.
    /// Waiting holds no thread; work whose caller has gone away (a closed connection) is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CpuError> {
        let admitted = self
            .admission
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CpuError::Stopped(self.name))?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if done.is_closed() {
                return;
            }
            // A panic is reported to the caller; the thread goes on.
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The place is given back once the work is done (or skipped), before the answer.
            drop(admitted);
            let _ = done.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| CpuError::Stopped(self.name))?;
        match result.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(CpuError::Panicked(self.name)),
            Err(_) => Err(CpuError::Stopped(self.name)),
        }
    }
}

/// The calling thread made `NICER_BY` nicer than it is (19 at most): the scheduler then runs
/// page-serving threads first, whatever nice value the whole service was started with.
#[cfg(target_os = "linux")]
pub fn lower_priority(threads: &str) {
    // SAFETY: getpriority and setpriority only read and change a scheduling attribute. On
    // Linux, PRIO_PROCESS with `who = 0` names the calling thread alone, not the process.
    // getpriority's -1 may be a value or an error; either way setpriority gets a valid value.
    let failed = unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (current + NICER_BY).min(19))
    } != 0;
    if failed {
        tracing::warn!(threads, "could not lower the threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn lower_priority(_threads: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Jobs that hold their place until told to go, counting how many run at once.
    struct Gate {
        running: AtomicUsize,
        most: AtomicUsize,
        started: AtomicUsize,
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
    }

    impl Gate {
        fn job(self: &Arc<Self>) -> impl FnOnce() -> std::thread::ThreadId + Send + 'static {
            let gate = self.clone();
            move || {
                let now = gate.running.fetch_add(1, Ordering::SeqCst) + 1;
                gate.most.fetch_max(now, Ordering::SeqCst);
                gate.started.fetch_add(1, Ordering::SeqCst);
                let mut open = gate.open.lock().unwrap_or_else(|e| e.into_inner());
                while !*open {
                    open = gate.opened.wait(open).unwrap_or_else(|e| e.into_inner());
                }
                drop(open);
                gate.running.fetch_sub(1, Ordering::SeqCst);
                std::thread::current().id()
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_most_the_bound_runs_the_rest_waits_and_nothing_runs_on_the_caller() {
        let pool = Arc::new(CpuPool::new("test", 2, 3).unwrap_or_else(|e| panic!("{e}")));
        let gate = Arc::new(Gate {
            running: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
            open: std::sync::Mutex::new(false),
            opened: std::sync::Condvar::new(),
        });
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (pool, job) = (pool.clone(), gate.job());
                tokio::spawn(async move { pool.run(job).await })
            })
            .collect();
        // Two threads take a job each; one more is admitted and queued; seven wait without a
        // thread. The caller's single-threaded runtime stays free to run this very test.
        for _ in 0..200 {
            if gate.started.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            gate.started.load(Ordering::SeqCst),
            2,
            "two threads, two jobs"
        );
        assert_eq!(
            pool.admission.available_permits(),
            0,
            "one admitted job queued"
        );
        *gate.open.lock().unwrap_or_else(|e| e.into_inner()) = true;
        gate.opened.notify_all();
        assert!(!pool.idle(), "jobs running and queued");
        let caller = std::thread::current().id();
        for task in tasks {
            let ran_on = task.await.unwrap_or_else(|e| panic!("{e}"));
            assert_ne!(ran_on.unwrap_or_else(|e| panic!("{e}")), caller);
        }
        assert_eq!(gate.started.load(Ordering::SeqCst), 10, "every job ran");
        assert_eq!(
            gate.most.load(Ordering::SeqCst),
            2,
            "never more than the threads"
        );
        assert_eq!(
            pool.admission.available_permits(),
            3,
            "every place given back"
        );
        assert!(pool.idle());
    }

    #[tokio::test]
    async fn work_stays_on_the_pool_while_light_pages_are_served_and_no_longer() {
        let pool = CpuPool::new("test", 1, 1).unwrap_or_else(|e| panic!("{e}"));
        assert!(pool.quiet(), "nothing served yet");
        pool.light_request();
        assert!(!pool.quiet(), "a guide page was just served");
        // A job on the pool, as the pages sent there while light pages were served.
        let (started, go) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let running = {
            let (started, go) = (started.clone(), go.clone());
            pool.run(move || {
                started.notify_one();
                go.wait();
            })
        };
        let waiting = async {
            started.notified().await;
            tokio::time::sleep(LIGHT_TRAFFIC_WINDOW + Duration::from_millis(20)).await;
            let quiet = pool.quiet();
            go.wait();
            quiet
        };
        let (ran, quiet_while_busy) = tokio::join!(running, waiting);
        assert!(ran.is_ok());
        assert!(
            quiet_while_busy,
            "no light page for a while: back on the worker, whatever the pool still runs"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
        let pool = CpuPool::new("test", 1, 1).unwrap_or_else(|e| panic!("{e}"));
        let failed = pool.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(CpuError::Panicked("test"))));
        assert_eq!(pool.run(|| 7).await.ok(), Some(7));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_threads_run_at_a_lower_priority_than_pages() {
        let pool = CpuPool::new("test", 1, 1).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: getpriority reads a scheduling attribute of the calling thread.
        let nice = pool
            .run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: as above, on this (test) thread.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (here + NICER_BY).min(19));
    }
}
