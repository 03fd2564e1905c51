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

    /// For progressive samplers: how many top-ranked data every sample so
    /// far was drawn from (`None` = all data).
    fn pool(&self) -> Option<usize> {
        None
    }
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

    fn pool(&self) -> Option<usize> {
        Some(self.n)
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
    /// `cdf(0..n)`. `None` when fewer than `m` data have a positive weight
    /// (no sample of size `m` exists) or the total is not finite.
    pub fn new(n: usize, m: usize, cdf: F) -> Option<Self> {
        if n == 0 {
            return None;
        }
        let total = cdf(n - 1);
        let mut positive = usize::from(cdf(0) > 0.0);
        for i in 1..n {
            positive += usize::from(cdf(i) > cdf(i - 1));
        }
        (positive >= m && total > 0.0 && total.is_finite()).then_some(Self {
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

/// Every `m`-subset of `0..n` exactly once, in lexicographic order (so the
/// top-ranked subsets come first); returns false when exhausted. For small
/// problems, where trying everything is cheaper than the statistics of
/// random sampling.
#[derive(Clone, Debug)]
pub struct Exhaustive {
    n: usize,
    next: [usize; 8],
    m: usize,
    done: bool,
}

impl Exhaustive {
    /// All `m`-subsets of `0..n` (`m ≤ 8`).
    pub fn new(n: usize, m: usize) -> Self {
        let mut next = [0; 8];
        for (i, v) in next.iter_mut().enumerate() {
            *v = i;
        }
        Self {
            n,
            next,
            m,
            done: m > 8 || m > n || m == 0,
        }
    }

    /// Number of `m`-subsets of `n` items, saturating.
    pub fn count(n: usize, m: usize) -> u64 {
        let mut c: u64 = 1;
        for i in 0..m.min(n) {
            c = c.saturating_mul((n - i) as u64) / (i + 1) as u64;
        }
        if m > n {
            0
        } else {
            c
        }
    }
}

impl Sampler for Exhaustive {
    fn sample(&mut self, _rng: &mut SplitMix64, out: &mut [usize]) -> bool {
        if self.done || out.len() != self.m {
            return false;
        }
        out.copy_from_slice(&self.next[..self.m]);
        // Advance to the next combination.
        let m = self.m;
        let mut i = m;
        while i > 0 {
            i -= 1;
            if self.next[i] < self.n - m + i {
                self.next[i] += 1;
                for j in i + 1..m {
                    self.next[j] = self.next[j - 1] + 1;
                }
                return true;
            }
        }
        self.done = true;
        true
    }
}
