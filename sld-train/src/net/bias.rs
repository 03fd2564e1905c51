//! A convolution's per-channel bias and its activation (none or ReLU) as
//! one Candle custom op on the CPU, with a one-pass gradient.
//!
//! Why: Candle differentiates `broadcast_add` of a `[1, C, 1, 1]` bias by
//! summing the gradient over dimensions 0, 2 and 3, which its CPU backend
//! does element by element with three divisions each; on the small
//! network's training step that reduction alone took ~17 % of the time
//! (perf, BENCHMARKS.md "Training step"). Here the bias gradient is one
//! contiguous sum per channel plane, and the ReLU mask is applied in the
//! same pass.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::unfold::f32_slice;

/// `act(x + bias[c])` for `x` `[B, C, H, W]` and `bias` `[C]` (f32,
/// contiguous); `relu` selects ReLU, otherwise no activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BiasAct {
    /// Apply ReLU after the bias.
    pub relu: bool,
}

/// `(channels, plane)` of a 4-d layout.
fn planes(l: &Layout) -> candle_core::Result<(usize, usize)> {
    let (_, c, h, w) = l.shape().dims4()?;
    Ok((c, h * w))
}

impl CustomOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "sld-bias-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), s1, l1)?;
        let bias = f32_slice(self.name(), s2, l2)?;
        let (c, plane) = planes(l1)?;
        if bias.len() != c {
            candle_core::bail!("sld bias: {} biases for {c} channels", bias.len())
        }
        let mut out = vec![0f32; x.len()];
        let relu = self.relu;
        out.par_chunks_mut(plane.max(1))
            .zip(x.par_chunks(plane.max(1)))
            .enumerate()
            .for_each(|(i, (o, xi))| {
                let b = bias[i % c];
                for (o, &v) in o.iter_mut().zip(xi) {
                    let y = v + b;
                    *o = if relu { y.max(0.0) } else { y };
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let gx = if self.relu {
            res.contiguous()?
                .apply_op2_no_bwd(&grad.contiguous()?, &ReluMask)?
        } else {
            grad.contiguous()?
        };
        let gb = gx.apply_op1_no_bwd(&ChannelSum)?;
        Ok((Some(gx), Some(gb)))
    }
}

/// `grad · [res > 0]`: the gradient through a ReLU from its output.
struct ReluMask;

impl CustomOp2 for ReluMask {
    fn name(&self) -> &'static str {
        "sld-relu-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = f32_slice(self.name(), s1, l1)?;
        let g = f32_slice(self.name(), s2, l2)?;
        if y.len() != g.len() {
            candle_core::bail!("sld relu mask: shapes differ")
        }
        let mut out = vec![0f32; y.len()];
        out.par_chunks_mut(4096)
            .zip(y.par_chunks(4096).zip(g.par_chunks(4096)))
            .for_each(|(o, (y, g))| {
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = if y > 0.0 { g } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `[B, C, H, W]` → `[C]`: the sum of each channel over batch and plane.
struct ChannelSum;

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "sld-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(self.name(), s, l)?;
        let (c, plane) = planes(l)?;
        let sums: Vec<f32> = g
            .par_chunks(plane.max(1))
            .map(|p| p.iter().map(|&v| v as f64).sum::<f64>() as f32)
            .collect();
        let mut out = vec![0f32; c];
        for (i, s) in sums.iter().enumerate() {
            out[i % c] += s;
        }
        Ok((CpuStorage::F32(out), Shape::from(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The op and its gradients against Candle's own broadcast add + ReLU.
    #[test]
    fn matches_candle_broadcast_add_and_relu() {
        let dev = Device::Cpu;
        for relu in [false, true] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::new(&[0.3f32, -0.2, 0.1], &dev).unwrap()).unwrap();
            let up = Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap();
            let ours = x.as_tensor().apply_op2(b.as_tensor(), BiasAct { relu }).unwrap();
            let mut theirs = x
                .as_tensor()
                .broadcast_add(&b.as_tensor().reshape((1, 3, 1, 1)).unwrap())
                .unwrap();
            if relu {
                theirs = theirs.relu().unwrap();
            }
            let d = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
            let g1 = ours.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = theirs.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&x, &b] {
                let a = g1.get(v.as_tensor()).unwrap();
                let e = g2.get(v.as_tensor()).unwrap();
                let d = (a - e).unwrap().abs().unwrap().max_all().unwrap();
                assert!(d.to_scalar::<f32>().unwrap() < 1e-5, "relu {relu}");
            }
        }
    }
}
