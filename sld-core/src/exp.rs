//! `eˣ` for `x ≤ 0` in `f32`, branch-free so that loops over heatmaps
//! vectorise: the softmax normaliser of a logits map ([`crate::heatmap::presence`])
//! takes one exponential per cell, and `libm::expf` (scalar, with special
//! cases) cost 20× the whole decode (BENCHMARKS.md, "Heatmap decoding").
//!
//! Method: `eˣ = 2ⁿ · eʳ` with `n = round(x / ln 2)` and
//! `r = x − n·ln 2 ∈ [−ln 2 / 2, ln 2 / 2]` (ln 2 split in two parts, Cody
//! and Waite), `eʳ` by its degree-6 Taylor polynomial (truncation below
//! 1.2·10⁻⁷ relative), `2ⁿ` built in the exponent bits. Relative error
//! below 4·10⁻⁷ for `x ∈ [−87, 0]` (tested against `f64::exp`); 0 below
//! −87 (where `eˣ < 1.7·10⁻³⁸`); NaN stays NaN.

/// `eˣ` for `x ≤ 0` (see the module docs for accuracy); for `x > 0` the
/// result is `1` (callers subtract the maximum first).
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with trailing zero bits so n·LN2_HI is exact.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer for |t| < 2²².
    const ROUND: f32 = 12_582_912.0;
    let nan = x.is_nan();
    let underflow = x < -87.0;
    // A NaN input flows through as garbage and is replaced at the end.
    let x = x.clamp(-87.0, 0.0);
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n ∈ [−126, 0]: 2ⁿ is a normal float. k's bits are those of
    // 1.5·2²³ + n (0x4B40_0000 + n), so n comes out by integer arithmetic
    // (no saturating float-to-int cast, which would not vectorise).
    let biased = k.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    let y = if underflow { 0.0 } else { p * scale };
    if nan {
        f32::NAN
    } else {
        y
    }
}

/// The largest of `z` and `floor`, ignoring NaN, in eight lanes.
pub fn max_at_least(z: &[f32], floor: f32) -> f32 {
    let mut acc = [floor; 8];
    let mut chunks = z.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let m = chunks
        .remainder()
        .iter()
        .fold(floor, |a, &v| if v > a { v } else { a });
    acc.iter().fold(m, |a, &v| if v > a { v } else { a })
}

/// `Σ e^(zᵢ − m)` over `z`, for `m ≥ max(z)` (no term exceeds 1), in
/// eight independent lanes so that it vectorises. NaN in `z` gives NaN.
pub fn sum_exp_shifted(z: &[f32], m: f32) -> f32 {
    // Map a block into a buffer (a plain element-wise loop, which the
    // compiler vectorises), then add the buffer up in eight lanes.
    let mut acc = [0f32; 8];
    let mut buf = [0f32; 64];
    for block in z.chunks(64) {
        let e = &mut buf[..block.len()];
        for (d, &v) in e.iter_mut().zip(block) {
            *d = exp_nonpositive(v - m);
        }
        let mut lanes = e.chunks_exact(8);
        for c in &mut lanes {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        acc[0] += lanes.remainder().iter().sum::<f32>();
    }
    acc.iter().sum()
}
