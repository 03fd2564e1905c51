//! The generic RANSAC loop with a mock estimator: exact iteration counts.

use heapless::Vec as HVec;
use sld_core::pnp::ransac::{ransac, required_iterations, Estimator, RansacOptions, Score, MAX_MODELS};
use sld_core::pnp::sampler::{Prosac, Sampler};
use sld_core::rng::SplitMix64;

/// 1D "fit a constant": 30 inliers at 0.0, 70 outliers spread far apart.
struct Constant {
    data: Vec<f64>,
}

impl Estimator for Constant {
    type Model = f64;
    const SAMPLE_SIZE: usize = 1;
    fn len(&self) -> usize {
        self.data.len()
    }
    fn generate(&self, sample: &[usize], models: &mut HVec<f64, MAX_MODELS>) {
        let _ = models.push(self.data[sample[0]]);
    }
    fn score(&self, model: &f64, _bound: f64) -> Score {
        let mut s = Score {
            cost: 0.0,
            inliers: 0,
        };
        for x in &self.data {
            let e2 = (x - model).powi(2);
            if e2 < 0.01 {
                s.cost += e2;
                s.inliers += 1;
            } else {
                s.cost += 0.01;
            }
        }
        s
    }
    fn local_optimize(&self, model: &f64) -> f64 {
        *model
    }
}

/// Always samples index 0 (an inlier).
struct First;
impl Sampler for First {
    fn sample(&mut self, _rng: &mut SplitMix64, out: &mut [usize]) -> bool {
        out[0] = 0;
        true
    }
}

fn data() -> Constant {
    let mut data = vec![0.0; 30];
    data.extend((0..70).map(|i| 10.0 + i as f64));
    Constant { data }
}

#[test]
fn adaptive_termination_stops_at_the_bound() {
    let est = data();
    let opts = RansacOptions {
        min_iterations: 0,
        max_iterations: 1000,
        success_prob: 0.9999,
        trials_mult: 1.0,
        early_exit: false,
        progressive_stop: true,
    };
    let mut rng = SplitMix64::new(0);
    let (model, stats) = ransac(&est, &mut First, &mut rng, &opts).unwrap();
    assert_eq!(model, 0.0);
    assert_eq!(stats.inliers, 30);
    // ln(1e-4) / ln(0.7) = 25.82 → the loop stops after 26 samples.
    let bound = required_iterations(0.3, 1, 0.9999);
    assert!((bound - 25.82).abs() < 0.01);
    assert_eq!(stats.iterations, 26);
    assert_eq!(stats.local_optimizations, 1);

    let tripled = RansacOptions {
        trials_mult: 3.0,
        ..opts
    };
    assert_eq!(
        ransac(&est, &mut First, &mut rng, &tripled).unwrap().1.iterations,
        78
    );
    let floor = RansacOptions {
        min_iterations: 100,
        ..opts
    };
    assert_eq!(
        ransac(&est, &mut First, &mut rng, &floor).unwrap().1.iterations,
        100
    );
    let cap = RansacOptions {
        max_iterations: 10,
        ..opts
    };
    assert_eq!(ransac(&est, &mut First, &mut rng, &cap).unwrap().1.iterations, 10);
}

#[test]
fn prosac_grows_its_pool_and_samples_distinct_indices() {
    let mut s = Prosac::new(100, 3, 1000);
    let mut rng = SplitMix64::new(1);
    let mut out = [0usize; 3];
    let mut last_pool = 3;
    for t in 0..5000 {
        assert!(s.sample(&mut rng, &mut out));
        assert!(out[0] != out[1] && out[0] != out[2] && out[1] != out[2]);
        let pool = s.pool().unwrap();
        assert!(out.iter().all(|&i| i < pool));
        assert!(pool >= last_pool);
        last_pool = pool;
        if t < 3 {
            // The first samples come from the very top of the ranking.
            assert!(out.iter().all(|&i| i < 6), "{out:?}");
        }
    }
    assert_eq!(s.pool(), Some(100));
}
