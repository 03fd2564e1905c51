//! `sld synth`: render a synthetic scene.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Output scene directory (created).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Scene seed (room, furniture, textures, lights, paths).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Total images over all sessions.
    #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 300)]
    pub images: usize,
    /// Recording sessions, each with its own lighting; the last is the test set.
    #[arg(value_parser = super::args::int_in::<usize>(1, 64), long, default_value_t = 3)]
    pub sessions: usize,
    /// Image width, pixels.
    #[arg(value_parser = super::args::int_in::<u32>(16, 16384), long, default_value_t = 640)]
    pub width: u32,
    /// Image height, pixels.
    #[arg(value_parser = super::args::int_in::<u32>(16, 16384), long, default_value_t = 352)]
    pub height: u32,
    /// Horizontal field of view, degrees.
    #[arg(value_parser = super::args::real_in::<f64>(1.0, 170.0), long, default_value_t = 70.0)]
    pub hfov: f64,
    /// Surface points per square metre sampled for points3d.txt.
    #[arg(value_parser = super::args::real_in::<f64>(0.0, 1e5), long, default_value_t = 120.0)]
    pub point_density: f64,
    /// Render every session under the first session's lighting (an
    /// ablation: the query session then differs only in its camera path).
    #[arg(long)]
    pub same_lighting: bool,
}

/// Runs `sld synth`.
pub fn run(a: Args) -> Result<()> {
    let o = sld_train::synth::SynthOptions {
        seed: a.seed,
        images: a.images,
        sessions: a.sessions,
        width: a.width,
        height: a.height,
        hfov_deg: a.hfov,
        point_density: a.point_density,
        progress: true,
        same_lighting: a.same_lighting,
    };
    let t = std::time::Instant::now();
    let s = sld_train::synth::synthesize(&a.out, &o)?;
    eprintln!(
        "sld synth: {} images, {} points (mean track {:.1}) in {:.1} s → {}",
        s.images,
        s.points,
        s.mean_track,
        t.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}
