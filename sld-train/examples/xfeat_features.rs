//! XFeat's trunk as imported (`sld weights import-xfeat`) run by sld-core
//! on one image: writes the `[64, H/8, W/8]` features as little-endian f32
//! for `bench/xfeat_reference.py`, which computes the same features from
//! `xfeat.pt` with an independent NumPy implementation of `model.py`.
//!
//! ```text
//! cargo run --release -p sld-train --example xfeat_features -- XFEAT.safetensors IMAGE.png W H OUT.f32
//! ```
use anyhow::{Context, Result};
use sld_core::model::{HeatmapKind, Model};
use sld_train::net::arch::{build, BackboneKind, HeadKind, NetSpec};
use sld_train::net::export::to_sld_bytes;
use sld_train::train::full::load_backbone;

fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() == 6,
        "usage: xfeat_features XFEAT.safetensors IMAGE W H OUT.f32"
    );
    let (w, h): (usize, usize) = (a[3].parse()?, a[4].parse()?);
    let spec = NetSpec {
        input_width: w,
        input_height: h,
        head_channels: 8,
        heads: 1,
        seed: 0,
        heatmaps: HeatmapKind::Logits,
        input: Default::default(),
    };
    let mut net = build(BackboneKind::XFeat, HeadKind::Light, &spec, 1, "xfeat");
    load_backbone(a[1].as_ref(), &mut net.tensors)?;
    // The trunk alone: its last layer is the output.
    net.info.graph.layers.retain(|l| !l.name.starts_with("head."));
    net.info.graph.outputs = vec!["block_fusion.2".into()];
    net.info.landmarks = 64;
    net.tensors.retain(|t| !t.name.starts_with("head."));
    let bytes = to_sld_bytes(&net.info, &net.tensors, &vec![[0f32; 3]; 64])?;
    let model = Model::load(&bytes[..]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = model.plan();
    let img = image::open(&a[2]).with_context(|| a[2].clone())?.to_rgb8();
    let im = sld_train::data::scene::as_image(&img)?;
    let mut arena = vec![0f32; plan.arena_len];
    let mut scratch = vec![0f32; plan.scratch_len];
    let spec = &model.info().graph.input;
    let input = sld_core::nn::input_mut(plan, &mut arena).context("input")?;
    sld_core::image::resize_normalize(&im, w, h, &spec.mean, &spec.std, input);
    sld_core::image::normalize(spec.normalize, input, 1, w, h, &mut scratch);
    sld_core::nn::run(plan, model.weights(), &mut arena, &mut scratch).map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = sld_core::nn::output(plan, &arena, 0).context("output")?;
    let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&a[5], bytes)?;
    eprintln!("{} features ({}×{}×{}) → {}", f.len(), 64, h / 8, w / 8, a[5]);
    Ok(())
}
