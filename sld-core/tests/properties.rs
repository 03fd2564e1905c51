//! Property tests: camera round trips and pose algebra.

use proptest::prelude::*;
use sld_core::nalgebra::Vector3;
use sld_core::{position_error_m, rotation_error_deg, Camera, Pose};

fn camera() -> impl Strategy<Value = Camera> {
    (
        100.0..2000.0f64,
        0.8..1.25f64,
        100u32..2000,
        100u32..2000,
        -0.2..0.2f64,
    )
        .prop_map(|(f, aspect, w, h, k)| {
            Camera::new(
                w,
                h,
                f,
                f * aspect,
                (w as f64 - 1.0) / 2.0 + 3.0,
                (h as f64 - 1.0) / 2.0 - 2.0,
                k,
            )
            .unwrap()
        })
}

fn pose() -> impl Strategy<Value = Pose> {
    (
        prop::array::uniform3(-3.0..3.0f64),
        prop::array::uniform3(-10.0..10.0f64),
    )
        .prop_map(|(w, t)| Pose::from_axis_angle(Vector3::from(w), Vector3::from(t)))
}

proptest! {
    #[test]
    fn project_then_unproject_is_identity(cam in camera(), nx in -0.6..0.6f64, ny in -0.6..0.6f64, z in 0.1..50.0f64) {
        // Keep within the region where the radial model is monotonic.
        prop_assume!(1.0 + 3.0 * cam.kappa * (nx * nx + ny * ny) > 0.1);
        let px = cam.project([nx * z, ny * z, z]).unwrap();
        let n = cam.unproject(px).unwrap();
        prop_assert!((n[0] - nx).abs() < 1e-9 && (n[1] - ny).abs() < 1e-9, "{:?} vs {:?}", n, (nx, ny));
    }

    #[test]
    fn unproject_then_project_is_identity(cam in camera(), u in 0.0..1.0f64, v in 0.0..1.0f64) {
        let px = [u * (cam.width as f64 - 1.0), v * (cam.height as f64 - 1.0)];
        if let Ok(n) = cam.unproject(px) {
            let back = cam.distort_to_pixel(n);
            prop_assert!((back[0] - px[0]).abs() < 1e-6 && (back[1] - px[1]).abs() < 1e-6);
            let und = cam.undistort_pixel(px).unwrap();
            prop_assert!((und[0] - (cam.fx * n[0] + cam.cx)).abs() < 1e-9);
        }
    }

    #[test]
    fn scaling_the_image_scales_pixel_centres(cam in camera(), s in 0.25..2.0f64, nx in -0.5..0.5f64, ny in -0.5..0.5f64) {
        let scaled = cam.scaled(s, s, 1, 1).unwrap();
        let a = cam.distort_to_pixel([nx, ny]);
        let b = scaled.distort_to_pixel([nx, ny]);
        // Pixel-centre convention: edges scale, centres move by half a pixel.
        prop_assert!(((a[0] + 0.5) * s - 0.5 - b[0]).abs() < 1e-9);
        prop_assert!(((a[1] + 0.5) * s - 0.5 - b[1]).abs() < 1e-9);
    }

    #[test]
    fn inverse_composes_to_identity(p in pose(), x in prop::array::uniform3(-5.0..5.0f64)) {
        let x = Vector3::from(x);
        let id = p.compose(&p.inverse());
        prop_assert!((id.transform(&x) - x).norm() < 1e-9);
        prop_assert!((p.inverse().transform(&p.transform(&x)) - x).norm() < 1e-9);
        prop_assert!(p.is_valid(1e-9));
    }

    #[test]
    fn composition_is_associative_and_maps_points(a in pose(), b in pose(), c in pose(), x in prop::array::uniform3(-5.0..5.0f64)) {
        let x = Vector3::from(x);
        let l = a.compose(&b).compose(&c);
        let r = a.compose(&b.compose(&c));
        prop_assert!((l.transform(&x) - r.transform(&x)).norm() < 1e-9);
        prop_assert!((a.compose(&b).transform(&x) - a.transform(&b.transform(&x))).norm() < 1e-9);
    }

    #[test]
    fn centre_maps_to_the_camera_origin(p in pose()) {
        prop_assert!(p.transform(&p.centre()).norm() < 1e-9);
        prop_assert!((p.inverse().translation - p.centre()).norm() < 1e-12);
    }

    #[test]
    fn error_metrics_measure_known_perturbations(p in pose(), axis in prop::array::uniform3(-1.0..1.0f64), deg in 0.01..170.0f64, shift in prop::array::uniform3(-1.0..1.0f64)) {
        let axis = Vector3::from(axis);
        prop_assume!(axis.norm() > 0.1);
        let d = Pose::from_axis_angle(axis.normalize() * deg.to_radians(), Vector3::zeros());
        // Rotate the camera about its own centre: pure rotation error.
        let q = Pose::from_centre(d.rotation * p.rotation, p.centre());
        prop_assert!((rotation_error_deg(&p, &q) - deg).abs() < 1e-6);
        prop_assert!(position_error_m(&p, &q) < 1e-9);
        // Move the centre: pure position error.
        let s = Vector3::from(shift);
        let m = Pose::from_centre(p.rotation, p.centre() + s);
        prop_assert!((position_error_m(&p, &m) - s.norm()).abs() < 1e-9);
        prop_assert!(rotation_error_deg(&p, &m) < 1e-5);
    }
}

#[test]
fn invalid_cameras_are_rejected() {
    use sld_core::CameraError;
    assert_eq!(
        Camera::pinhole(640, 480, 0.0, 320.0, 240.0),
        Err(CameraError::InvalidFocal)
    );
    assert_eq!(
        Camera::new(640, 480, 500.0, -1.0, 320.0, 240.0, 0.0),
        Err(CameraError::InvalidFocal)
    );
    assert_eq!(
        Camera::new(640, 480, 500.0, 500.0, f64::NAN, 240.0, 0.0),
        Err(CameraError::NonFinite)
    );
    assert_eq!(
        Camera::pinhole(0, 480, 500.0, 320.0, 240.0),
        Err(CameraError::EmptyImage)
    );
    let cam = Camera::pinhole(640, 480, 500.0, 320.0, 240.0).unwrap();
    assert_eq!(cam.project([0.0, 0.0, -1.0]), Err(CameraError::BehindCamera));
    assert_eq!(cam.project([0.0, 0.0, 0.0]), Err(CameraError::BehindCamera));
    assert_eq!(cam.unproject([f64::NAN, 0.0]), Err(CameraError::NonFinite));
    // Strong barrel distortion folds over far from the centre.
    let folded = Camera::new(640, 480, 100.0, 100.0, 320.0, 240.0, -0.5).unwrap();
    assert_eq!(folded.unproject([5000.0, 240.0]), Err(CameraError::NotInvertible));
}
