//! Runs an `sld_core` [`Graph`] in Candle: the training-side twin of
//! `sld_core::nn`, used for training forward passes and parity checks.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use sld_core::model::{Activation, Graph, Op, INPUT};

use super::bias::BiasAct;
use super::unfold::Unfold;

/// Applies an activation.
pub fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    Ok(match a {
        Activation::None => x.clone(),
        Activation::Relu => x.relu()?,
        Activation::Relu6 => x.clamp(0f32, 6f32)?,
        Activation::Silu => x.silu()?,
    })
}

/// Every `s`-th sample along `dim`, starting at 0 (`s` ≥ 1).
fn subsample(x: &Tensor, dim: usize, s: usize) -> Result<Tensor> {
    if s == 1 {
        return Ok(x.clone());
    }
    let n = x.dim(dim)?;
    let out = n.div_ceil(s);
    let x = x.pad_with_zeros(dim, 0, out * s - n)?;
    let mut shape = x.dims().to_vec();
    shape[dim] = out;
    shape.insert(dim + 1, s);
    Ok(x.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)?)
}

thread_local! {
    static GENERIC_OPS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the CPU-only custom ops ([`Unfold`], [`BiasAct`]) serve tensors
/// on `device`: on the CPU, unless [`with_generic_ops`] is in force.
fn cpu_ops(device: &candle_core::Device) -> bool {
    device.is_cpu() && !GENERIC_OPS.with(|g| g.get())
}

/// Runs `f` with the CPU's custom ops replaced, on this thread, by the
/// Candle ops every other device (CUDA) runs: Candle's `conv2d` for dense
/// k×k convolutions and a broadcast add for biases. Tests compare the two
/// on the CPU; `scripts/gpu-check.sh` compares the CPU with CUDA.
pub fn with_generic_ops<T>(f: impl FnOnce() -> T) -> T {
    let before = GENERIC_OPS.with(|g| g.replace(true));
    let r = f();
    GENERIC_OPS.with(|g| g.set(before));
    r
}

/// Convolution of `x` (`[B, C, H, W]`) with `w` (`[O, C/groups, k, k]`),
/// zero padding `[top, left, bottom, right]`, no bias. On the CPU, dense
/// k×k convolutions run as [`Unfold`] + one matrix product (Candle's CPU
/// convolution has a slow backward); elsewhere as Candle's `conv2d`.
/// On every device 1×1 convolutions are one matrix product and depthwise
/// ones `k²` shifted multiply-adds (Candle runs a grouped convolution as
/// one convolution per group).
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    dilation: usize,
    groups: usize,
    pad: [usize; 4],
) -> Result<Tensor> {
    let (b, c, h, wd) = x.dims4()?;
    let (o, ci, k, k2) = w.dims4()?;
    let u = Unfold {
        k,
        stride,
        dilation,
        pad,
    };
    let fallback = || -> Result<Tensor> {
        let xp = x
            .pad_with_zeros(2, pad[0], pad[2])?
            .pad_with_zeros(3, pad[1], pad[3])?;
        Ok(xp.conv2d(w, 0, stride, dilation, groups)?)
    };
    let Some((ho, wo)) = u.out_hw(h, wd) else {
        return fallback();
    };
    if k != k2 {
        return fallback();
    }
    if groups == 1 && ci == c {
        let x = x.contiguous()?;
        if k == 1 && stride == 1 && pad == [0; 4] {
            let y = w.reshape((o, c))?.broadcast_matmul(&x.reshape((b, c, h * wd))?)?;
            return Ok(y.reshape((b, o, ho, wo))?);
        }
        if !cpu_ops(x.device()) {
            return fallback();
        }
        let cols = x.apply_op1(u)?;
        let y = w.reshape((o, c * k * k))?.broadcast_matmul(&cols)?;
        return Ok(y.reshape((b, o, ho, wo))?);
    }
    if groups == c && o == c && ci == 1 {
        let xp = x
            .pad_with_zeros(2, pad[0], pad[2])?
            .pad_with_zeros(3, pad[1], pad[3])?;
        let tap = |ky: usize, kx: usize| -> Result<Tensor> {
            let v = xp.narrow(2, ky * dilation, (ho - 1) * stride + 1)?.narrow(
                3,
                kx * dilation,
                (wo - 1) * stride + 1,
            )?;
            subsample(&subsample(&v, 2, stride)?, 3, stride)
        };
        let wf = w.reshape((c, k * k))?;
        let mut y: Option<Tensor> = None;
        for t in 0..k * k {
            let wt = wf.narrow(1, t, 1)?.reshape((1, c, 1, 1))?;
            let term = tap(t / k, t % k)?.broadcast_mul(&wt)?;
            y = Some(match y {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
        return y.context("empty kernel");
    }
    fallback()
}

/// The `[n_out, n_in]` matrix of 1-D bilinear resampling with sld-core's
/// (PyTorch's `align_corners=False`) convention.
fn interpolation_matrix(n_in: usize, n_out: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut m = vec![0f32; n_out * n_in];
    for i in 0..n_out {
        let s = ((i as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).max(0.0);
        let i0 = (s as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let f = s - i0 as f32;
        m[i * n_in + i0] += 1.0 - f;
        m[i * n_in + i1] += f;
    }
    Ok(Tensor::from_vec(m, (n_out, n_in), device)?)
}

/// Bilinear resampling of `[B, C, H, W]` to `[B, C, oh, ow]` as two
/// matrix products (differentiable; every device).
pub fn resize_bilinear(x: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let aw = interpolation_matrix(w, ow, x.device())?.t()?;
    let ah = interpolation_matrix(h, oh, x.device())?;
    let y = x.contiguous()?.broadcast_matmul(&aw)?; // [B, C, h, ow]
    Ok(ah.broadcast_matmul(&y)?) // [B, C, oh, ow]
}

/// Forward pass of `graph` on `image` (`[B, C, H, W]`) with weights looked
/// up by name in `weights`; returns the output tensors in graph order.
pub fn forward(graph: &Graph, weights: &HashMap<String, Tensor>, image: &Tensor) -> Result<Vec<Tensor>> {
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    values.insert(INPUT, image.clone());
    let get = |values: &HashMap<&str, Tensor>, n: &str| -> Result<Tensor> {
        values
            .get(n)
            .cloned()
            .with_context(|| format!("tensor '{n}' not computed"))
    };
    for layer in &graph.layers {
        let y = match &layer.op {
            Op::Conv2d(c) => {
                let x = get(&values, &c.input)?;
                let w = weights
                    .get(&c.weight)
                    .with_context(|| format!("weight '{}'", c.weight))?;
                if c.stride[0] != c.stride[1] || c.dilation[0] != c.dilation[1] {
                    bail!(
                        "layer '{}': Candle needs equal stride and dilation on both axes",
                        layer.name
                    );
                }
                let pad = c.padding.map(|p| p as usize);
                let y = conv2d(
                    &x,
                    w,
                    c.stride[0] as usize,
                    c.dilation[0] as usize,
                    c.groups as usize,
                    pad,
                )?;
                let fused = matches!(c.activation, Activation::None | Activation::Relu);
                match &c.bias {
                    Some(bn) if fused && cpu_ops(y.device()) => {
                        let bias = weights.get(bn).with_context(|| format!("bias '{bn}'"))?;
                        let relu = c.activation == Activation::Relu;
                        y.contiguous()?.apply_op2(&bias.contiguous()?, BiasAct { relu })?
                    }
                    Some(bn) => {
                        let bias = weights.get(bn).with_context(|| format!("bias '{bn}'"))?;
                        let y = y.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?;
                        activate(&y, c.activation)?
                    }
                    None => activate(&y, c.activation)?,
                }
            }
            Op::Add { inputs, activation } => {
                let mut y = get(&values, &inputs[0])?;
                for i in &inputs[1..] {
                    y = (y + get(&values, i)?)?;
                }
                activate(&y, *activation)?
            }
            Op::Concat { inputs } => {
                let xs = inputs
                    .iter()
                    .map(|i| get(&values, i))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&xs, 1)?
            }
            Op::Resize { input, like } => {
                let x = get(&values, input)?;
                let (_, _, oh, ow) = get(&values, like)?.dims4()?;
                resize_bilinear(&x, oh, ow)?
            }
            Op::Activation { input, activation } => activate(&get(&values, input)?, *activation)?,
        };
        values.insert(layer.name.as_str(), y);
    }
    graph.outputs.iter().map(|o| get(&values, o)).collect()
}
