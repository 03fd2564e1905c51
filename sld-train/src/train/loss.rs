//! Training losses: SLD*'s squared error and the softmax loss with an
//! "absent" bin, and the batch loss that runs a graph in Candle.

use std::collections::HashMap;

use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, Var};
use sld_core::rng::SplitMix64;

use super::options::Loss;
use super::samples;

/// The batch loss of `graph` with the weights of `vars` on `batch`: the
/// [`Loss`] of `bo`, summed and divided by the batch size. Returns the loss
/// tensor and its value (an error when it is not finite).
pub fn batch_loss(
    graph: &sld_core::model::Graph,
    vars: &[&[(String, Var, Tensor, Tensor)]],
    batch: &[&samples::Sample],
    bo: &samples::BatchOptions,
    rng: &mut SplitMix64,
    epoch: usize,
) -> Result<(Tensor, f64)> {
    // The batch goes where the variables live (the training device).
    let device = vars
        .iter()
        .flat_map(|v| v.first())
        .map(|(_, v, _, _)| v.device().clone())
        .next()
        .unwrap_or(Device::Cpu);
    let (x, t, m) = samples::batch(batch, &graph.input, bo, Some(rng), &device)?;
    let weights: HashMap<String, Tensor> = vars
        .iter()
        .flat_map(|v| v.iter())
        .map(|(n, v, _, _)| (n.clone(), v.as_tensor().clone()))
        .collect();
    // An ensemble's outputs, concatenated, are the landmarks in order.
    let mut ys = crate::net::graph::forward(graph, &weights, &x)?;
    let y = if ys.len() == 1 {
        ys.remove(0)
    } else {
        Tensor::cat(&ys, 1)?
    };
    let loss = match bo.loss {
        Loss::Mse => ((y - t)?.sqr()?.mul(&m)?.sum_all()? / batch.len() as f64)?,
        Loss::Softmax => (softmax_loss(&y, &t, &m)? / batch.len() as f64)?,
    };
    let lv = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    ensure!(
        lv.is_finite(),
        "training diverged at epoch {} (loss {lv}); try a lower --lr",
        epoch + 1
    );
    Ok((loss, lv))
}

/// Summed cross-entropy of the [`Loss::Softmax`] loss for logits `y`
/// `[B, L, h, w]`, Gaussian targets `t` and cell weights `m` (as
/// [`samples::batch`] makes them): a map whose weights are all 0 is ignored;
/// a map with a positive target is a visible landmark whose target
/// distribution is `t` normalised over the cells; any other map is a
/// landmark not in the image, whose target is the absent bin.
pub fn softmax_loss(y: &Tensor, t: &Tensor, m: &Tensor) -> Result<Tensor> {
    let (b, l, h, w) = y.dims4()?;
    let cells = h * w;
    let t = t.reshape((b * l, cells))?;
    let tv = t.to_vec2::<f32>()?;
    let mv = m.reshape((b * l, cells))?.max(1)?.to_vec1::<f32>()?;
    let mut target = Vec::with_capacity(b * l * (cells + 1));
    let mut weight = Vec::with_capacity(b * l);
    for (row, &mk) in tv.iter().zip(&mv) {
        let sum: f32 = row.iter().sum();
        if sum > 0.0 {
            target.extend(row.iter().map(|v| v / sum));
            target.push(0.0);
        } else {
            target.extend(std::iter::repeat_n(0.0, cells));
            target.push(1.0);
        }
        weight.push(if mk > 0.0 { 1f32 } else { 0.0 });
    }
    let dev = y.device();
    let target = Tensor::from_vec(target, (b * l, cells + 1), dev)?;
    let weight = Tensor::from_vec(weight, (b * l, 1), dev)?;
    let absent = Tensor::zeros((b * l, 1), y.dtype(), dev)?;
    let z = Tensor::cat(&[&y.reshape((b * l, cells))?, &absent], 1)?;
    let logp = candle_nn::ops::log_softmax(&z, 1)?;
    Ok((logp.mul(&target)?.broadcast_mul(&weight)?.sum_all()?.neg())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed form: with every logit 0, each softmax over `cells + 1` bins
    /// puts `1/(cells + 1)` on every bin, so each map that counts costs
    /// `ln(cells + 1)` whatever its target; ignored maps cost nothing.
    #[test]
    fn softmax_loss_closed_form_at_zero_logits() {
        let (b, l, h, w) = (2usize, 3usize, 2usize, 3usize);
        let cells = h * w;
        let y = Tensor::zeros((b, l, h, w), DType::F32, &Device::Cpu).unwrap();
        let mut t = vec![0f32; b * l * cells];
        let mut m = vec![1f32; b * l * cells];
        t[2] = 1.0; // map (0, 0) visible
        t[3] = 0.5;
        m[cells..2 * cells].iter_mut().for_each(|v| *v = 0.0); // map (0, 1) ignored
        let t = Tensor::from_vec(t, (b, l, h, w), &Device::Cpu).unwrap();
        let m = Tensor::from_vec(m, (b, l, h, w), &Device::Cpu).unwrap();
        let got = softmax_loss(&y, &t, &m).unwrap().to_scalar::<f32>().unwrap() as f64;
        let want = 5.0 * ((cells + 1) as f64).ln();
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    /// Against a direct f64 evaluation on random logits: a visible map's
    /// cost is `−Σ (t/Σt)·log p`, an absent map's `−log p(absent)`.
    #[test]
    fn softmax_loss_matches_a_direct_evaluation() {
        let (h, w) = (3usize, 4usize);
        let cells = h * w;
        let mut rng = SplitMix64::new(5);
        let z: Vec<f32> = (0..2 * cells)
            .map(|_| (4.0 * rng.unit_f64() - 2.0) as f32)
            .collect();
        let mut t = vec![0f32; 2 * cells];
        t[5] = 1.0;
        t[6] = 0.25;
        t[1] = 0.5;
        let m = vec![1f32; 2 * cells];
        let lse = |zs: &[f32]| -> f64 {
            let s: f64 = zs.iter().map(|&v| (v as f64).exp()).sum::<f64>() + 1.0;
            s.ln()
        };
        let sum_t: f64 = t[..cells].iter().map(|&v| v as f64).sum();
        let visible: f64 = (0..cells)
            .map(|c| -(t[c] as f64 / sum_t) * (z[c] as f64 - lse(&z[..cells])))
            .sum();
        let absent = lse(&z[cells..]);
        let dev = Device::Cpu;
        let got = softmax_loss(
            &Tensor::from_vec(z, (1, 2, h, w), &dev).unwrap(),
            &Tensor::from_vec(t, (1, 2, h, w), &dev).unwrap(),
            &Tensor::from_vec(m, (1, 2, h, w), &dev).unwrap(),
        )
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
        assert!(
            (got - (visible + absent)).abs() < 1e-4,
            "{got} vs {}",
            visible + absent
        );
    }
}
