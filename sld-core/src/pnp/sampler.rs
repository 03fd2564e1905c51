//! Minimal-sample selection for RANSAC.
//!
//! Data are indexed `0..n` **in decreasing quality order** (the caller sorts
//! by confidence), which is what PROSAC needs; the other samplers ignore
//! the order except through the weights.

use crate::rng::SplitMix64;

/// Draws `out.len()` distinct indices in `0..n` per call.
pub trait Sampler {
    /// Fills `out` with distinct indices; returns false when impossible
    /// (fewer data than the sample size).
    fn sample(&mut self, rng: &mut SplitMix64, out: &mut [usize]) -> bool;
}

/// Uniform sampling without replacement.
#[derive(Clone, Debug)]
pub struct Uniform {
    n: usize,
}

impl Uniform {
    /// Samples from `0..n`.
    pub fn new(n: usize) -> Self {
        Self { n }
    }
}

impl Sampler for Uniform {
    fn sample(&mut self, rng: &mut SplitMix64, out: &mut [usize]) -> bool {
        draw_distinct(rng, self.n, out, 0)
    }
}

/// Fills `out[start..]` with distinct uniform indices in `0..n` that also
/// differ from `out[..start]`.
fn draw_distinct(rng: &mut SplitMix64, n: usize, out: &mut [usize], start: usize) -> bool {
    if n < out.len() {
        return false;
    }
    for i in start..out.len() {
        loop {
            let c = rng.below(n);
            if !out[..i].contains(&c) {
                out[i] = c;
                break;
            }
        }
    }
    true
}

/// PROSAC (Chum & Matas, CVPR 2005): progressively grows the pool of
/// top-ranked data. Sample `t` holds the newest member of the pool and
/// `m − 1` others drawn uniformly from the rest of the pool; once the
/// pool is everything, sampling is uniform.
#[derive(Clone, Debug)]
pub struct Prosac {
    n_total: usize,
    m: usize,
    /// Pool size.
    n: usize,
    /// Iteration counter.
    t: u64,
    /// `T_n` (real-valued growth function).
    tn: f64,
    /// `T'_n`: the iteration at which the pool grows past `n`.
    tn_prime: u64,
}

impl Prosac {
    /// PROSAC over `n_total` ranked data with sample size `m`, reaching the
    /// uniform regime after about `T_N = min(horizon, C(n_total, m))`
    /// samples. Capping `T_N` at the number of distinct samples keeps small
    /// problems from redrawing the same top-ranked sample: with
    /// `T_N = C(N, m)`, `T_n = C(n, m)` — one draw per distinct subset.
    pub fn new(n_total: usize, m: usize, horizon: u64) -> Self {
        let mut subsets = 1.0f64;
        for i in 0..m {
            subsets *= n_total.saturating_sub(i) as f64 / (m - i) as f64;
        }
        let mut tn = (horizon as f64).min(subsets).max(1.0);
        for i in 0..m {
            tn *= (m - i) as f64 / (n_total.saturating_sub(i)).max(1) as f64;
        }
        Self {
            n_total,
            m,
            n: m,
            t: 0,
            tn,
            tn_prime: 1,
        }
    }

    /// Current pool size.
    pub fn pool(&self) -> usize {
        self.n
    }
}

impl Sampler for Prosac {
    fn sample(&mut self, rng: &mut SplitMix64, out: &mut [usize]) -> bool {
        let m = self.m;
        if out.len() != m || self.n_total < m {
            return false;
        }
        self.t += 1;
        while self.t > self.tn_prime && self.n < self.n_total {
            let next = self.tn * (self.n + 1) as f64 / (self.n + 1 - m) as f64;
            self.tn_prime += libm::ceil(next - self.tn).max(1.0) as u64;
            self.tn = next;
            self.n += 1;
        }
        if self.n >= self.n_total {
            return draw_distinct(rng, self.n_total, out, 0);
        }
        out[0] = self.n - 1;
        draw_distinct(rng, self.n - 1, &mut out[1..], 0)
    }
}

/// Sampling with probability proportional to a weight, without
/// replacement (inverse-CDF draws with rejection of repeats). The
/// cumulative weights are read through `cdf(i)` so they can live inside
/// the caller's per-point scratch.
#[derive(Debug)]
pub struct Weighted<F> {
    n: usize,
    cdf: F,
    total: f64,
    /// Number of data with a positive weight.
    positive: usize,
}

impl<F: Fn(usize) -> f64> Weighted<F> {
    /// Sampler over `n` data with non-decreasing cumulative weights
    /// `cdf(0..n)`. `None` when the total weight is not positive and finite.
    pub fn new(n: usize, cdf: F) -> Option<Self> {
        if n == 0 {
            return None;
        }
        let total = cdf(n - 1);
        let mut positive = usize::from(cdf(0) > 0.0);
        for i in 1..n {
            positive += usize::from(cdf(i) > cdf(i - 1));
        }
        (total > 0.0 && total.is_finite()).then_some(Self {
            n,
            cdf,
            total,
            positive,
        })
    }

    /// First index whose cumulative weight exceeds `r`.
    fn find(&self, r: f64) -> usize {
        let (mut lo, mut hi) = (0, self.n - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (self.cdf)(mid) <= r {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

impl<F: Fn(usize) -> f64> Sampler for Weighted<F> {
    fn sample(&mut self, rng: &mut SplitMix64, out: &mut [usize]) -> bool {
        if self.positive < out.len() {
            return false;
        }
        for i in 0..out.len() {
            loop {
                let c = self.find(rng.unit_f64() * self.total);
                if !out[..i].contains(&c) {
                    out[i] = c;
                    break;
                }
            }
        }
        true
    }
}
