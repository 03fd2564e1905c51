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
#[cfg(feature = "std")]
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

#[cfg(feature = "std")]
impl core::fmt::Debug for Pool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Pool({} threads)", self.threads())
    }
}

#[cfg(feature = "std")]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

#[cfg(feature = "std")]
struct State {
    job: Option<Job>,
    epoch: u64,
    remaining: usize,
    panicked: bool,
    shutdown: bool,
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

#[cfg(feature = "std")]
impl Pool {
    /// A pool of `threads` threads in all (the caller counts as one, so
    /// `threads − 1` are spawned; 1 spawns none). Fails when the system
    /// cannot create a thread.
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                job: None,
                epoch: 0,
                remaining: 0,
                panicked: false,
                shutdown: false,
            }),
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
        {
            let mut st = lock(&self.shared.state);
            st.job = Some(Job {
                call: call::<F>,
                data: f as *const F as *const (),
            });
            st.epoch = st.epoch.wrapping_add(1);
            st.remaining = self.workers.len();
            st.panicked = false;
        }
        self.shared.work.notify_all();
        // Thread 0's share; a panic here still waits for the workers, so
        // `f` outlives every call to it.
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(0)));
        let mut st = lock(&self.shared.state);
        while st.remaining > 0 {
            st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.job = None;
        let panicked = st.panicked;
        drop(st);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        assert!(!panicked, "an inference worker thread panicked");
    }
}

#[cfg(feature = "std")]
fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A worker's panic is caught before it could poison the lock; recover
    // the state anyway rather than propagate a poison.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(feature = "std")]
fn worker(s: &Shared, t: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = lock(&s.state);
            while !st.shutdown && (st.epoch == seen || st.job.is_none()) {
                st = s.work.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.shutdown {
                return;
            }
            seen = st.epoch;
            st.job
        };
        let Some(job) = job else { continue };
        // SAFETY: `Pool::run` keeps the closure alive until `remaining`
        // reaches 0, which happens only after this call returns.
        #[allow(unsafe_code)]
        let ok = std::panic::catch_unwind(|| unsafe { (job.call)(job.data, t) }).is_ok();
        let mut st = lock(&s.state);
        st.panicked |= !ok;
        st.remaining -= 1;
        if st.remaining == 0 {
            s.done.notify_all();
        }
    }
}

#[cfg(feature = "std")]
impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_thread_runs_its_part_once_per_call() {
        for threads in [1, 2, 3, 8] {
            let pool = Pool::new(threads).unwrap();
            assert_eq!(pool.threads(), threads);
            let hits: [AtomicUsize; 8] = core::array::from_fn(|_| AtomicUsize::new(0));
            for _ in 0..100 {
                pool.run(&|t| {
                    hits[t].fetch_add(1, Ordering::Relaxed);
                });
            }
            for (t, h) in hits.iter().enumerate() {
                assert_eq!(h.load(Ordering::Relaxed), if t < threads { 100 } else { 0 });
            }
        }
    }

    #[test]
    fn parts_are_disjoint_slices_written_in_place() {
        let pool = Pool::new(3).unwrap();
        let par = Par::new(Some(&pool));
        let mut data = [0u32; 10];
        let (a, rest) = data.split_at_mut(3);
        let (b, c) = rest.split_at_mut(4);
        let mut parts = [Some(a), Some(b), Some(c)];
        par.for_parts(&mut parts, &|t, s: &mut [u32]| {
            s.iter_mut().for_each(|v| *v = t as u32 + 1)
        });
        assert_eq!(data, [1, 1, 1, 2, 2, 2, 2, 3, 3, 3]);
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_pool_survives() {
        let pool = Pool::new(2).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.run(&|t| assert!(t != 1, "worker 1 fails"));
        }));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
