//! Runs an `sld_core` [`Graph`] in Candle: the training-side twin of
//! `sld_core::nn`, used for training forward passes and parity checks.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use sld_core::model::{Activation, Graph, Op, INPUT};

/// Applies an activation.
pub fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    Ok(match a {
        Activation::None => x.clone(),
        Activation::Relu => x.relu()?,
        Activation::Relu6 => x.clamp(0f32, 6f32)?,
        Activation::Silu => x.silu()?,
    })
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
                let [t, l, b, r] = c.padding.map(|p| p as usize);
                let x = x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?;
                let mut y = x.conv2d(
                    w,
                    0,
                    c.stride[0] as usize,
                    c.dilation[0] as usize,
                    c.groups as usize,
                )?;
                if let Some(bn) = &c.bias {
                    let bias = weights.get(bn).with_context(|| format!("bias '{bn}'"))?;
                    y = y.broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?;
                }
                activate(&y, c.activation)?
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
            Op::Activation { input, activation } => activate(&get(&values, input)?, *activation)?,
        };
        values.insert(layer.name.as_str(), y);
    }
    graph.outputs.iter().map(|o| get(&values, o)).collect()
}
