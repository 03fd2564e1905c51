//! Tests of `nn::pool`.

use sld_core::nn::{Par, Pool};

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
