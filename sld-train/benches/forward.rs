//! CNN forward pass: sld-core vs Candle CPU on the same weights.
//!
//! `RAYON_NUM_THREADS=1 cargo bench -p sld-train --bench forward`
//!
//! EfficientNet-Lite0 at output stride 8 + SLD*'s ASPP head with 125
//! landmarks, 640×352 input (SLD*'s Indoor6 size), random weights, batch 1,
//! single thread. Prints the median of 7 runs after one warm-up, checks
//! that both produce the same heatmaps first.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use sld_core::model::Model;
use sld_core::rng::SplitMix64;
use sld_train::net::builder::GraphBuilder;
use sld_train::net::export::to_sld_bytes;
use sld_train::net::graph::forward;
use sld_train::net::heads::aspp_head;
use sld_train::net::lite0::efficientnet_lite0_s8;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (h, w) = (352, 640);
    let mut b = GraphBuilder::new(3, h, w, 1);
    let trunk = efficientnet_lite0_s8(&mut b);
    let head = aspp_head(&mut b, "head", &trunk, 80, 125);
    let (info, tensors) = b.finish(&[&head], 8, "bench");
    let landmarks: Vec<[f32; 3]> = (0..125).map(|i| [i as f32, 0.0, 1.0]).collect();
    let bytes = to_sld_bytes(&info, &tensors, &landmarks).unwrap();
    let model = Model::load(bytes.as_slice()).unwrap();
    let plan = model.plan();
    let mut rng = SplitMix64::new(2);
    let input: Vec<f32> = (0..3 * h * w).map(|_| rng.unit_f64() as f32).collect();
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];

    let dev = Device::Cpu;
    let weights: HashMap<String, Tensor> = tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Tensor::from_vec(t.data.clone(), t.shape.as_slice(), &dev).unwrap(),
            )
        })
        .collect();
    let x = Tensor::from_vec(input.clone(), (1, 3, h, w), &dev).unwrap();

    let mut ours = vec![];
    let mut theirs = vec![];
    for run in 0..8 {
        let t = Instant::now();
        sld_core::nn::input_mut(plan, &mut arena)
            .unwrap()
            .copy_from_slice(&input);
        sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch).unwrap();
        let a = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let out = forward(&info.graph, &weights, &x).unwrap();
        let c = t.elapsed().as_secs_f64() * 1e3;
        if run == 0 {
            let reference: Vec<f32> = out[0].flatten_all().unwrap().to_vec1().unwrap();
            let got = sld_core::nn::output(plan, &arena, 0).unwrap();
            let peak = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = reference
                .iter()
                .zip(got)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff <= 1e-4 * peak, "outputs differ: {diff} vs peak {peak}");
            continue;
        }
        ours.push(a);
        theirs.push(c);
    }
    let file_mb = bytes.len() as f64 / 1e6;
    println!("EfficientNet-Lite0-s8 + ASPP(125) at {w}x{h}, single thread, median of 7");
    println!("model file          {file_mb:.1} MB");
    println!("arena + scratch     {:.1} MB", plan.memory_bytes() as f64 / 1e6);
    println!("sld-core forward    {:.1} ms", median(ours.clone()));
    println!("Candle forward      {:.1} ms", median(theirs.clone()));
    println!("ratio sld/Candle    {:.2}", median(ours) / median(theirs));
}
