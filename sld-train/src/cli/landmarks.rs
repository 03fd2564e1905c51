//! `sld landmarks`: choose a scene's landmarks and write their visibility.

use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The scene directory.
    #[arg(long)]
    pub scene: PathBuf,
    /// Number of landmarks.
    #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 300)]
    pub count: usize,
    /// Starting minimum distance between landmarks, metres.
    #[arg(value_parser = super::args::real_in::<f64>(0.0, 1e6), long, default_value_t = 3.0)]
    pub radius: f64,
    /// Keep points seen in more than this many images.
    #[arg(value_parser = super::args::int_in::<usize>(1, 1_000_000), long, default_value_t = 25)]
    pub min_track: usize,
    /// Keep points whose mean depth is below this, metres.
    #[arg(value_parser = super::args::real_in::<f64>(1e-3, 1e6), long, default_value_t = 5.0)]
    pub max_depth: f64,
    /// Keep points whose viewing rays span more than this, radians.
    #[arg(value_parser = super::args::real_in::<f64>(0.0, 1e6), long, default_value_t = 0.5)]
    pub min_span: f64,
    /// Relative depth tolerance of the visibility test.
    #[arg(value_parser = super::args::real_in::<f64>(1e-4, 10.0), long, default_value_t = 0.1)]
    pub depth_tolerance: f64,
    /// Read NAME.<VARIANT>.depth.png instead of NAME.depth.png for visibility
    /// (e.g. `filled`: maps completed by `sld depth fill`).
    #[arg(long)]
    pub depth_variant: Option<String>,
}

/// Runs `sld landmarks`.
pub fn run(a: Args) -> Result<()> {
    let o = sld_train::landmarks::pipeline::LandmarkOptions {
        count: a.count,
        select: sld_train::landmarks::select::SelectOptions {
            min_track: a.min_track,
            max_mean_depth: a.max_depth,
            min_angle_span: a.min_span,
            radius: a.radius,
        },
        depth_tolerance: a.depth_tolerance,
        depth_variant: a.depth_variant,
    };
    let s = sld_train::landmarks::pipeline::run(&a.scene, &o)?;
    eprintln!(
        "sld landmarks: {} of {} points pass the filters; chose {} (final radius {:.3} m), \
         each visible in {:.1} images on average → {}",
        s.candidates,
        s.points,
        s.chosen,
        s.final_radius,
        s.mean_visible,
        sld_train::data::naming::landmarks_dir(&a.scene).display()
    );
    Ok(())
}
