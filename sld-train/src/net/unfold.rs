//! Convolution for training on the CPU as unfold (im2col) + one matrix
//! product, with the unfold a Candle custom op whose gradient is the fold
//! (col2im) — one pass each way.
//!
//! Measured (`cargo run --release -p sld-train --example train_step_timing`,
//! small network, batch 8, 320×176): expressing the unfold with Candle's
//! `narrow`/`stack` made the backward pass memory-bound (one zero-filled
//! full-size gradient per kernel tap, then a sum); see BENCHMARKS.md.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Geometry of one unfold: kernel, stride, dilation, padding `[top, left,
/// bottom, right]` (zeros), input `H × W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfold {
    /// Square kernel size.
    pub k: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Dilation (both axes).
    pub dilation: usize,
    /// Zero padding `[top, left, bottom, right]`.
    pub pad: [usize; 4],
}

impl Unfold {
    /// Output size `(ho, wo)` for an `h × w` input (`None` if the kernel
    /// does not fit).
    pub fn out_hw(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let span = self.dilation * (self.k - 1) + 1;
        let (hp, wp) = (h + self.pad[0] + self.pad[2], w + self.pad[1] + self.pad[3]);
        (self.k >= 1 && self.stride >= 1 && hp >= span && wp >= span)
            .then(|| ((hp - span) / self.stride + 1, (wp - span) / self.stride + 1))
    }

    /// Input row/column of output position `o` and tap `t` (may be outside).
    #[inline]
    fn src(&self, o: usize, t: usize, pad: usize) -> isize {
        (o * self.stride + t * self.dilation) as isize - pad as isize
    }
}

/// The f32 data of a contiguous CPU tensor, for the custom op named `op`
/// (an error for any other dtype or a strided layout). Shared by the
/// custom ops of [`super`].
pub(super) fn f32_slice<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 tensors only")
    };
    let Some((a, b)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: inputs must be contiguous")
    };
    Ok(&v[a..b])
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "sld-unfold"
    }

    /// `[B, C, H, W]` → `[B, C·k·k, Ho·Wo]`, rows in `(c, ky, kx)` order
    /// (the order of a `[O, C, k, k]` weight flattened to `[O, C·k·k]`).
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s, l)?;
        let (b, c, h, w) = l.shape().dims4()?;
        let Some((ho, wo)) = self.out_hw(h, w) else {
            candle_core::bail!("sld unfold: kernel larger than the padded input")
        };
        let k = self.k;
        let plane = ho * wo;
        let mut out = vec![0f32; b * c * k * k * plane];
        out.par_chunks_mut(k * k * plane)
            .enumerate()
            .for_each(|(bc, rows)| {
                let src = &x[bc * h * w..(bc + 1) * h * w];
                for ky in 0..k {
                    for kx in 0..k {
                        let row = &mut rows[(ky * k + kx) * plane..(ky * k + kx + 1) * plane];
                        for oy in 0..ho {
                            let iy = self.src(oy, ky, self.pad[0]);
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let srow = &src[iy as usize * w..(iy as usize + 1) * w];
                            let drow = &mut row[oy * wo..(oy + 1) * wo];
                            for (ox, d) in drow.iter_mut().enumerate() {
                                let ix = self.src(ox, kx, self.pad[1]);
                                if ix >= 0 && ix < w as isize {
                                    *d = srow[ix as usize];
                                }
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((b, c * k * k, plane))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (_, c, h, w) = arg.dims4()?;
        let fold = Fold { geom: *self, c, h, w };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&fold)?))
    }
}

/// The adjoint of [`Unfold`]: sums columns back into the input image.
struct Fold {
    geom: Unfold,
    c: usize,
    h: usize,
    w: usize,
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "sld-fold"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(self.name(), s, l)?;
        let (b, _, _) = l.shape().dims3()?;
        let (c, h, w, u) = (self.c, self.h, self.w, self.geom);
        let Some((ho, wo)) = u.out_hw(h, w) else {
            candle_core::bail!("sld fold: kernel larger than the padded input")
        };
        let (k, plane) = (u.k, ho * wo);
        let mut out = vec![0f32; b * c * h * w];
        out.par_chunks_mut(h * w).enumerate().for_each(|(bc, dst)| {
            let rows = &g[bc * k * k * plane..(bc + 1) * k * k * plane];
            for ky in 0..k {
                for kx in 0..k {
                    let row = &rows[(ky * k + kx) * plane..(ky * k + kx + 1) * plane];
                    for oy in 0..ho {
                        let iy = u.src(oy, ky, u.pad[0]);
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let drow = &mut dst[iy as usize * w..(iy as usize + 1) * w];
                        for (ox, v) in row[oy * wo..(oy + 1) * wo].iter().enumerate() {
                            let ix = u.src(ox, kx, u.pad[1]);
                            if ix >= 0 && ix < w as isize {
                                drow[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, c, h, w))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Unfold + matmul equals Candle's conv2d, and its gradient equals the
    /// gradient through Candle's conv2d (an independent implementation).
    #[test]
    fn matches_candle_conv_and_its_gradient() {
        let dev = Device::Cpu;
        for (k, stride, dil, pad) in [
            (3, 1, 1, [1, 1, 1, 1]),
            (3, 2, 1, [0, 0, 1, 1]),
            (3, 1, 2, [2, 2, 2, 2]),
            (1, 2, 1, [0; 4]),
            (5, 2, 1, [1, 2, 2, 1]),
        ] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 11, 9), &dev).unwrap()).unwrap();
            let w = Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev).unwrap();
            let u = Unfold {
                k,
                stride,
                dilation: dil,
                pad,
            };
            let (ho, wo) = u.out_hw(11, 9).unwrap();
            let cols = x.as_tensor().apply_op1(u).unwrap();
            let y = w
                .reshape((4, 3 * k * k))
                .unwrap()
                .broadcast_matmul(&cols)
                .unwrap()
                .reshape((2, 4, ho, wo))
                .unwrap();
            let xp = x
                .as_tensor()
                .pad_with_zeros(2, pad[0], pad[2])
                .unwrap()
                .pad_with_zeros(3, pad[1], pad[3])
                .unwrap();
            let r = xp.conv2d(&w, 0, stride, dil, 1).unwrap();
            let d = max_abs_diff(&y, &r);
            assert!(d < 1e-4, "forward {k} {stride} {dil}: {d}");
            // Gradient of a random linear functional.
            let m = Tensor::randn(0f32, 1.0, y.dims(), &dev).unwrap();
            let g1 = (&y * &m).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&r * &m).unwrap().sum_all().unwrap().backward().unwrap();
            let (a, b) = (g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap());
            let d = max_abs_diff(a, b);
            assert!(d < 1e-4, "gradient {k} {stride} {dil}: {d}");
        }
    }
}
