//! The paper's depth-fill regressor: an MLP (hidden layers 100 and 50,
//! ReLU) in Candle on `(m, x/W, y/H, r, g, b)`, standardised.

use anyhow::Result;
use candle_core::{DType, Tensor};
use candle_nn::{Module, Optimizer, VarBuilder, VarMap};
use sld_core::rng::SplitMix64;

use super::fit::{FitOptions, Inputs, Pixels};
use super::DepthMap;

/// The paper's regressor: features `(m, x/W, y/H, r, g, b)` standardised
/// (scikit-learn's StandardScaler), hidden layers 100 and 50 with ReLU,
/// Adam (lr 1e-3, L2 1e-4 as scikit-learn's `alpha`), batch 200, squared
/// error on the standardised depth; 80/20 split, stop when the validation
/// loss has not improved by 1e-4 for 10 epochs. Trained on at most
/// `mlp_samples` pixels (drawn at random) per image.
pub fn mlp(inputs: Inputs<'_>, depth: &DepthMap, px: Pixels<'_>, o: &FitOptions) -> Result<Vec<f32>> {
    let Pixels { train, query } = px;
    let (w, h) = (depth.width, depth.height);
    let features = |i: u32| -> [f32; 6] {
        let i = i as usize;
        let rgb = inputs.rgb.map_or([0.0; 3], |c| {
            [c[3 * i] as f32, c[3 * i + 1] as f32, c[3 * i + 2] as f32]
        });
        [
            inputs.mde.data[i],
            (i % w) as f32 / w as f32,
            (i / w) as f32 / h as f32,
            rgb[0],
            rgb[1],
            rgb[2],
        ]
    };
    let mut rng = SplitMix64::new(o.seed);
    let mut pool: Vec<u32> = train
        .iter()
        .copied()
        .filter(|&i| inputs.mde.data[i as usize].is_finite())
        .collect();
    // Partial Fisher–Yates: a random subset of at most `mlp_samples`.
    let take = pool.len().min(o.mlp_samples.max(10));
    for a in 0..take {
        let b = a + (rng.next_u64() % (pool.len() - a) as u64) as usize;
        pool.swap(a, b);
    }
    pool.truncate(take);
    let n_val = (pool.len() / 5).max(1);
    let (val, fit) = pool.split_at(n_val);

    // Standardisation from the training part.
    let feats: Vec<[f32; 6]> = fit.iter().map(|&i| features(i)).collect();
    let mut mean = [0f64; 6];
    let mut sd = [0f64; 6];
    for f in &feats {
        for c in 0..6 {
            mean[c] += f[c] as f64 / feats.len() as f64;
        }
    }
    for f in &feats {
        for c in 0..6 {
            sd[c] += (f[c] as f64 - mean[c]).powi(2) / feats.len() as f64;
        }
    }
    let sd = sd.map(|v| if v > 1e-12 { v.sqrt() } else { 1.0 });
    let zs: Vec<f64> = fit.iter().map(|&i| depth.data[i as usize] as f64).collect();
    let zm = zs.iter().sum::<f64>() / zs.len() as f64;
    let zsd = (zs.iter().map(|z| (z - zm).powi(2)).sum::<f64>() / zs.len() as f64)
        .sqrt()
        .max(1e-9);
    let scale =
        |f: [f32; 6]| -> [f32; 6] { std::array::from_fn(|c| ((f[c] as f64 - mean[c]) / sd[c]) as f32) };
    let dev = crate::device::open(o.device)?;
    let tensor_x = |idx: &[u32]| -> Result<Tensor> {
        let v: Vec<f32> = idx.iter().flat_map(|&i| scale(features(i))).collect();
        Ok(Tensor::from_vec(v, (idx.len(), 6), &dev)?)
    };
    let tensor_y = |idx: &[u32]| -> Result<Tensor> {
        let v: Vec<f32> = idx
            .iter()
            .map(|&i| ((depth.data[i as usize] as f64 - zm) / zsd) as f32)
            .collect();
        Ok(Tensor::from_vec(v, (idx.len(), 1), &dev)?)
    };

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let l1 = candle_nn::linear(6, 100, vb.pp("l1"))?;
    let l2 = candle_nn::linear(100, 50, vb.pp("l2"))?;
    let l3 = candle_nn::linear(50, 1, vb.pp("l3"))?;
    let net = |x: &Tensor| -> candle_core::Result<Tensor> {
        l3.forward(&l2.forward(&l1.forward(x)?.relu()?)?.relu()?)
    };
    let mut opt = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let (xv, yv) = (tensor_x(val)?, tensor_y(val)?);
    let mut order: Vec<u32> = fit.to_vec();
    let (mut best, mut stale) = (f32::INFINITY, 0);
    for _ in 0..o.mlp_max_epochs {
        for a in (1..order.len()).rev() {
            let b = (rng.next_u64() % (a as u64 + 1)) as usize;
            order.swap(a, b);
        }
        for batch in order.chunks(200) {
            let loss = (net(&tensor_x(batch)?)? - tensor_y(batch)?)?.sqr()?.mean_all()?;
            opt.backward_step(&loss)?;
        }
        let v = (net(&xv)? - &yv)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
        if v < best - 1e-4 {
            (best, stale) = (v, 0);
        } else {
            stale += 1;
            if stale >= 10 {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(query.len());
    for chunk in query.chunks(65536) {
        let p = net(&tensor_x(chunk)?)?.flatten_all()?.to_vec1::<f32>()?;
        out.extend(p.into_iter().map(|v| {
            let z = v as f64 * zsd + zm;
            if z.is_finite() && z > 0.0 {
                z as f32
            } else {
                f32::NAN
            }
        }));
    }
    Ok(out)
}
