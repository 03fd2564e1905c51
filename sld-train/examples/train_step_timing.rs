//! Times one training step of the small network (forward, backward) at
//! 320×176, batch 8, in Candle on the CPU: `cargo run --release -p sld-train --example train_step_timing`.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use sld_train::net::arch::{Arch, Network};
use sld_train::train::full::build_network;
use sld_train::train::TrainOptions;

fn main() -> anyhow::Result<()> {
    let o = TrainOptions {
        arch: Arch::Small,
        width: 32,
        head_channels: 64,
        input_width: 320,
        input_height: 176,
        landmarks: "unused".into(),
        epochs: 1,
        batch: 8,
        lr: 1e-3,
        seed: 1,
        depth_tolerance: 0.1,
        sigma: 1.5,
        jitter: 0.0,
        validate_every: 0,
        pos_weight: 10.0,
        backbone: None,
        buffer_copies: 1,
        geometric_aug: false,
        rotation_aug: false,
        novel_view_aug: false,
        head: Default::default(),
        input: Default::default(),
        depth_variant: None,
        loss: Default::default(),
        heads: 1,
        device: sld_train::device::DeviceChoice::Cpu,
        devices: vec![],
        world: None,
    };
    let Network {
        info, tensors: init, ..
    } = build_network(&o, 100, "timing").unwrap();
    let dev = Device::Cpu;
    let vars: Vec<(String, Var)> = init
        .iter()
        .map(|t| {
            Ok((
                t.name.clone(),
                Var::from_tensor(&Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev)?)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let weights: HashMap<String, Tensor> = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let x = Tensor::randn(0f32, 1.0, (o.batch, 3, 176, 320), &dev)?;
    for _ in 0..3 {
        let t0 = Instant::now();
        let y = sld_train::net::graph::forward(&info.graph, &weights, &x)?.remove(0);
        let loss = y.sqr()?.sum_all()?;
        let _ = loss.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let g = loss.backward()?;
        let t2 = Instant::now();
        println!(
            "forward {:.0} ms, backward {:.0} ms ({} grads)",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            vars.iter()
                .filter(|(_, v)| g.get(v.as_tensor()).is_some())
                .count()
        );
    }
    Ok(())
}
