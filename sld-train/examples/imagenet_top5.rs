//! Classifies photographs with the imported ImageNet EfficientNet-Lite0
//! (`sld weights import`), to check the import:
//! `cargo run --release -p sld-train --example imagenet_top5 -- backbone.safetensors photo.png...`

use anyhow::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 2,
        "usage: imagenet_top5 WEIGHTS.safetensors IMAGE..."
    );
    for img in &args[1..] {
        let top = sld_train::imagenet::classify(std::path::Path::new(&args[0]), std::path::Path::new(img))?;
        println!("{img}: {top:?}");
    }
    Ok(())
}
