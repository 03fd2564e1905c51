//! Whether a landmark is visible in an image: in front of the camera,
//! projecting inside it, and consistent with the image's depth map (SLD*'s
//! 1 / 0.5 / 0 label weights).

use crate::data::depth_map::DepthMap;

/// Label weight of a landmark in one image (SLD*'s scheme).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Visible {
    /// In front, inside the image, depth-consistent: weight 1.
    Yes,
    /// Inside the image but no depth to confirm it: weight 0.5 (SLD* ignores these maps).
    Unverified,
    /// Behind the camera, outside the image, too close, or occluded: weight 0.
    No,
}

impl Visible {
    /// The training weight: 1, 0.5 or 0.
    pub fn weight(self) -> f32 {
        match self {
            Visible::Yes => 1.0,
            Visible::Unverified => 0.5,
            Visible::No => 0.0,
        }
    }
}

/// Whether landmark `x_world` is visible in an image taken at `pose` by
/// `camera`: in front (z > `min_depth` m), projecting inside the image,
/// and with `|z − depth(u, v)| / z < rel_tol` where the depth map knows the
/// pixel (SLD* uses 0.3). Returns the projected pixel too.
pub fn visibility(
    x_world: [f64; 3],
    pose: &sld_core::Pose,
    camera: &sld_core::Camera,
    depth: Option<&DepthMap>,
    rel_tol: f64,
    min_depth: f64,
) -> (Visible, Option<[f64; 2]>) {
    let pc = pose.transform(&sld_core::nalgebra::Vector3::from(x_world));
    if pc[2].is_nan() || pc[2] <= min_depth {
        return (Visible::No, None);
    }
    let Ok(px) = camera.project([pc[0], pc[1], pc[2]]) else {
        return (Visible::No, None);
    };
    let inside = px[0] >= -0.5
        && px[1] >= -0.5
        && px[0] < camera.width as f64 - 0.5
        && px[1] < camera.height as f64 - 0.5;
    if !inside {
        return (Visible::No, Some(px));
    }
    match depth.and_then(|d| d.at(px[0], px[1])) {
        None => (Visible::Unverified, Some(px)),
        Some(d) if (pc[2] - d).abs() / pc[2] < rel_tol => (Visible::Yes, Some(px)),
        Some(_) => (Visible::No, Some(px)),
    }
}

#[cfg(test)]
mod visibility_tests {
    use super::*;
    use sld_core::nalgebra::Vector3;
    use sld_core::{Camera, Pose};

    /// Identity pose, a fronto-parallel wall at z = 4 m rendered as depth.
    fn wall() -> (Camera, Pose, DepthMap) {
        let cam = Camera::pinhole(64, 48, 50.0, 31.5, 23.5).unwrap();
        let depth = DepthMap {
            width: 64,
            height: 48,
            data: vec![4.0; 64 * 48],
        };
        (cam, Pose::identity(), depth)
    }

    #[test]
    fn visible_occluded_unverified_outside_behind() {
        let (cam, pose, mut depth) = wall();
        // On the wall, projecting to pixel (31.5 + 50·0.5/4, 23.5) = (37.75, 23.5).
        let (v, px) = visibility([0.5, 0.0, 4.0], &pose, &cam, Some(&depth), 0.3, 0.1);
        assert_eq!(v, Visible::Yes);
        let px = px.unwrap();
        assert!((px[0] - 37.75).abs() < 1e-12 && (px[1] - 23.5).abs() < 1e-12);
        // Behind the wall (z = 7 m): occluded.
        assert_eq!(
            visibility([0.5, 0.0, 7.0], &pose, &cam, Some(&depth), 0.3, 0.1).0,
            Visible::No
        );
        // In front of the wall within tolerance (z = 3.2 m, 20 % off): visible.
        assert_eq!(
            visibility([0.4, 0.0, 3.2], &pose, &cam, Some(&depth), 0.3, 0.1).0,
            Visible::Yes
        );
        // Outside the image, behind the camera.
        assert_eq!(
            visibility([5.0, 0.0, 4.0], &pose, &cam, Some(&depth), 0.3, 0.1).0,
            Visible::No
        );
        assert_eq!(
            visibility([0.0, 0.0, -4.0], &pose, &cam, Some(&depth), 0.3, 0.1).0,
            Visible::No
        );
        // A hole in the depth map: unverified (weight 0.5); no depth at all too.
        // (v = 23.5 lies on the row boundary; nearest-pixel lookup rounds to 24.)
        depth.data[24 * 64 + 38] = 0.0;
        let (v, _) = visibility([0.5, 0.0, 4.0], &pose, &cam, Some(&depth), 0.3, 0.1);
        assert_eq!((v, v.weight()), (Visible::Unverified, 0.5));
        assert_eq!(
            visibility([0.5, 0.0, 4.0], &pose, &cam, None, 0.3, 0.1).0,
            Visible::Unverified
        );
        // A moved camera sees the same point at the pixel the geometry says.
        let moved = Pose::from_centre(Pose::identity().rotation, Vector3::new(0.5, 0.0, 0.0));
        let (_, px) = visibility([0.5, 0.0, 4.0], &moved, &cam, None, 0.3, 0.1);
        assert!((px.unwrap()[0] - 31.5).abs() < 1e-12);
    }
}
