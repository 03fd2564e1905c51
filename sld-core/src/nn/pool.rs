//! Worker threads for inference (feature `std`), created once when a
//! `Localizer` loads and parked between frames: a frame hands them work
//! without allocating (`Mutex` and `Condvar` are futex-based).
//!
//! [`Par`] is what the kernels see: the pool, or nothing (one thread; also
//! every `no_std` build). Work is split into one part per thread, each part
//! a disjoint piece of the output, so results are bit-identical to one
//! thread (each value is computed by the same code in the same order).

use core::marker::PhantomData;
#[cfg(feature = "std")]
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(feature = "std")]
use std::sync::{Arc, Condvar, Mutex};

/// Most threads a pool may have (parts are handed out from a fixed array,
/// so no allocation per frame).
pub const MAX_THREADS: usize = 16;

/// How the kernels may split work: over a [`Pool`], or not at all.
#[derive(Clone, Copy, Default)]
pub struct Par<'a> {
    #[cfg(feature = "std")]
    pool: Option<&'a Pool>,
    _life: PhantomData<&'a ()>,
}

impl<'a> Par<'a> {
    /// One thread.
    pub const SERIAL: Par<'static> = Par {
        #[cfg(feature = "std")]
        pool: None,
        _life: PhantomData,
    };

    /// Work split over `pool` (one thread when `None`).
    #[cfg(feature = "std")]
    pub fn new(pool: Option<&'a Pool>) -> Self {
        Par {
            pool,
            _life: PhantomData,
        }
    }

    /// Threads work is split over (1 without a pool).
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(p) = self.pool {
            return p.threads();
        }
        1
    }

    /// Runs `f(t, part_t)` for every part, part `t` on thread `t`
    /// (parts beyond [`Par::threads`] or [`MAX_THREADS`] run on thread 0,
    /// after its own). Returns when all have finished.
    pub fn for_parts<T: Send>(&self, parts: &mut [Option<T>], f: &(dyn Fn(usize, T) + Sync)) {
        #[cfg(feature = "std")]
        if let Some(pool) = self.pool.filter(|p| p.threads() > 1) {
            let n = parts.len().min(pool.threads()).min(MAX_THREADS);
            let cells: [Mutex<Option<T>>; MAX_THREADS] =
                core::array::from_fn(|t| Mutex::new(if t < n { parts[t].take() } else { None }));
            pool.run(&|t| {
                let part = cells.get(t).and_then(|c| c.lock().ok()?.take());
                if let Some(p) = part {
                    f(t, p);
                }
            });
            for (t, p) in parts.iter_mut().enumerate().skip(n) {
                if let Some(p) = p.take() {
                    f(t, p);
                }
            }
            return;
        }
        for (t, p) in parts.iter_mut().enumerate() {
            if let Some(p) = p.take() {
                f(t, p);
            }
        }
    }
}

/// A fixed set of worker threads (the caller's thread is thread 0).
///
/// Hand-off is spin-then-park: between two calls of [`Pool::run`] a worker
/// spins on the call counter for up to [`SPIN`] before it parks on a
/// condition variable, and the caller spins as long on the count of
/// unfinished workers. A network's layers are 0.05–1 ms each, so within a
/// frame no one parks, and a hand-off costs a cache-line transfer instead
/// of a futex wake (tens of µs on a virtual machine whose idle vCPU has
/// halted). Between frames the workers park after [`SPIN`], so an idle
/// localizer burns no CPU.
#[cfg(feature = "std")]
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// How long a worker, or the caller, spins before it parks.
#[cfg(feature = "std")]
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(200);

#[cfg(feature = "std")]
impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pool({} threads)", self.threads())
    }
}

#[cfg(feature = "std")]
struct Shared {
    /// Calls of [`Pool::run`] so far; a worker runs the job when this
    /// moves past the last value it saw (Release after `job` is set).
    epoch: AtomicU64,
    /// Workers that have not finished the current call.
    remaining: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// The current call's job (set before `epoch` moves; read by workers
    /// after they see it move; cleared after `remaining` reaches 0).
    job: Mutex<Option<Job>>,
    /// Who is parked; the parking side checks its condition under this
    /// lock, and the waking side changes it under the lock, so no wake-up
    /// is lost.
    sleep: Mutex<Sleepers>,
    work: Condvar,
    done: Condvar,
}

#[cfg(feature = "std")]
#[derive(Default)]
struct Sleepers {
    workers: usize,
    caller: bool,
}

/// A borrowed `Fn(usize) + Sync` with its type erased.
#[cfg(feature = "std")]
#[derive(Clone, Copy)]
struct Job {
    call: unsafe fn(*const (), usize),
    data: *const (),
}

// SAFETY: `data` points to an `F: Sync` that `Pool::run` keeps alive (and
// does not return) until every worker has finished calling it.
#[cfg(feature = "std")]
#[allow(unsafe_code)]
unsafe impl Send for Job {}

/// Spins until `ready()` or [`SPIN`] has passed; true when ready.
#[cfg(feature = "std")]
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            core::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return ready();
        }
        // Let a thread with work have this core when there are more
        // threads than cores (a syscall per ~64 spins: a few µs).
        std::thread::yield_now();
    }
}

#[cfg(feature = "std")]
impl Pool {
    /// A pool of `threads` threads in all (the caller counts as one, so
    /// `threads − 1` are spawned; 1 spawns none). Fails when the system
    /// cannot create a thread.
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            job: Mutex::new(None),
            sleep: Mutex::new(Sleepers::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let mut workers = Vec::new();
        for t in 1..threads.clamp(1, MAX_THREADS) {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(std::format!("sld-nn-{t}"))
                .spawn(move || worker(&s, t));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    // Stop the ones already started before reporting.
                    drop(Pool { shared, workers });
                    return Err(e);
                }
            }
        }
        Ok(Pool { shared, workers })
    }

    /// Threads in all, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(t)` for `t` in `0..threads()`, `f(0)` on the calling
    /// thread; returns when every call has returned. A panic in a worker
    /// is re-raised here (a kernel bug, never an input's doing).
    pub fn run<F: Fn(usize) + Sync>(&self, f: &F) {
        if self.workers.is_empty() {
            f(0);
            return;
        }
        #[allow(unsafe_code)]
        unsafe fn call<F: Fn(usize)>(data: *const (), t: usize) {
            // SAFETY: `data` is the `&F` `run` erased; `run` has not
            // returned, so it is alive.
            let f = unsafe { &*(data as *const F) };
            f(t);
        }
        let s = &*self.shared;
        *lock(&s.job) = Some(Job {
            call: call::<F>,
            data: f as *const F as *const (),
        });
        s.panicked.store(false, Ordering::Relaxed);
        s.remaining.store(self.workers.len(), Ordering::Relaxed);
        {
            let sleepers = lock(&s.sleep);
            s.epoch.fetch_add(1, Ordering::Release);
            if sleepers.workers > 0 {
                s.work.notify_all();
            }
        }
        // Thread 0's share; a panic here still waits for the workers, so
        // `f` outlives every call to it.
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        let finished = || s.remaining.load(Ordering::Acquire) == 0;
        if !spin_until(finished) {
            let mut sleepers = lock(&s.sleep);
            sleepers.caller = true;
            while !finished() {
                sleepers = s.done.wait(sleepers).unwrap_or_else(|e| e.into_inner());
            }
            sleepers.caller = false;
        }
        *lock(&s.job) = None;
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(
            !s.panicked.load(Ordering::Relaxed),
            "an inference worker thread panicked"
        );
    }
}

#[cfg(feature = "std")]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker's panic is caught before it could poison a lock; recover
    // the state anyway rather than propagate a poison.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(feature = "std")]
fn worker(s: &Shared, t: usize) {
    let mut seen = 0u64;
    loop {
        let moved = || s.epoch.load(Ordering::Acquire) != seen || s.shutdown.load(Ordering::Acquire);
        if !spin_until(moved) {
            let mut sleepers = lock(&s.sleep);
            sleepers.workers += 1;
            while !moved() {
                sleepers = s.work.wait(sleepers).unwrap_or_else(|e| e.into_inner());
            }
            sleepers.workers -= 1;
        }
        if s.shutdown.load(Ordering::Acquire) {
            return;
        }
        seen = s.epoch.load(Ordering::Acquire);
        let job = *lock(&s.job);
        if let Some(job) = job {
            // SAFETY: `Pool::run` keeps the closure alive until
            // `remaining` reaches 0, which happens only after this call
            // returns.
            #[allow(unsafe_code)]
            let ok = std::panic::catch_unwind(|| unsafe { (job.call)(job.data, t) }).is_ok();
            if !ok {
                s.panicked.store(true, Ordering::Relaxed);
            }
        }
        if s.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let sleepers = lock(&s.sleep);
            if sleepers.caller {
                s.done.notify_all();
            }
        }
    }
}

#[cfg(feature = "std")]
impl Drop for Pool {
    fn drop(&mut self) {
        {
            let _sleepers = lock(&self.shared.sleep);
            self.shared.shutdown.store(true, Ordering::Release);
        }
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
