//! A scene opened for training: directory, name, landmarks, and its
//! labelled training samples.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use sld_core::model::InputSpec;

use super::options::TrainOptions;
use super::samples;
use crate::data::indoor6::read_landmarks;
use crate::data::scene::SceneDir;

/// One scene opened for training: its directory, name and landmarks.
pub struct TrainScene {
    /// The scene directory.
    pub scene: SceneDir,
    /// Its name (the directory name).
    pub name: String,
    /// The landmark file.
    pub landmarks_path: PathBuf,
    /// The landmarks (world, metres).
    pub landmarks: Vec<[f64; 3]>,
}

impl TrainScene {
    /// Opens `root` with the landmarks of `landmarks_path`.
    pub fn open(root: &Path, landmarks_path: &Path, o: &TrainOptions) -> Result<Self> {
        let mut scene = SceneDir::open(root)?;
        scene.depth_variant = o.depth_variant.clone();
        let landmarks = read_landmarks(landmarks_path)?;
        ensure!(
            !landmarks.is_empty(),
            "{}: no landmarks",
            landmarks_path.display()
        );
        ensure!(
            o.heads <= landmarks.len(),
            "--heads {} is more than the {} landmarks of {} (each head needs at least one)",
            o.heads,
            landmarks.len(),
            landmarks_path.display()
        );
        let name = root
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("scene")
            .to_string();
        Ok(Self {
            scene,
            name,
            landmarks_path: landmarks_path.to_path_buf(),
            landmarks,
        })
    }

    /// The training images, preprocessed for `spec` and labelled. Images
    /// without a depth map take visibility from the tracks
    /// (`visibility-N.txt` next to `landmarks-N.txt`), e.g. COLMAP imports.
    pub fn training_samples(
        &self,
        o: &TrainOptions,
        spec: &InputSpec,
        progress: bool,
    ) -> Result<Vec<samples::Sample>> {
        let (scene, lp) = (&self.scene, &self.landmarks_path);
        let train_idx = scene.part("train")?;
        ensure!(
            !train_idx.is_empty(),
            "{}: no training images",
            scene.root.display()
        );
        let vis_path = crate::data::naming::visibility_for(lp).unwrap_or_else(|| lp.clone());
        let tracks = if vis_path.exists() && vis_path != *lp {
            let v = crate::data::indoor6::read_visibility(&vis_path)?;
            ensure!(
                v.rows.len() == self.landmarks.len() && v.images == scene.images.len(),
                "{}: {} rows × {} images, but there are {} landmarks and {} images",
                vis_path.display(),
                v.rows.len(),
                v.images,
                self.landmarks.len(),
                scene.images.len()
            );
            Some(v)
        } else {
            None
        };
        let samples = samples::load_samples(
            scene,
            &train_idx,
            &self.landmarks,
            spec,
            o.depth_tolerance,
            tracks.as_ref(),
            progress,
        )?;
        let labelled = samples
            .iter()
            .flat_map(|s| &s.labels)
            .filter(|(_, w)| *w == 1.0)
            .count();
        ensure!(
            labelled > 0,
            "{}: no landmark is labelled visible in any training image: no depth maps (NAME.depth.png) \
             and no {} to take visibility from (run `sld landmarks`)",
            scene.root.display(),
            vis_path.display()
        );
        Ok(samples)
    }
}
