//! The reliability gate at the C boundary (issue 19, item 1): noise images
//! through the beacon kit's model give `SLD_STATUS_NO_POSE`, never a
//! made-up pose; the kit's own image still localises; the gate can be read,
//! set, checked and switched off, and the evidence behind the last pose is
//! reported either way.

use sld::*;
use sld_train::synth::noise::noise_images;

struct Handle(*mut SldLocalizer);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle from sld_localizer_new, freed once.
        unsafe { localizer::sld_localizer_free(self.0) };
    }
}

fn camera(c: &sld_core::Camera) -> SldCamera {
    SldCamera {
        fx: c.fx,
        fy: c.fy,
        cx: c.cx,
        cy: c.cy,
        kappa: c.kappa,
    }
}

fn localize(h: &Handle, rgb: &[u8], cam: &sld_core::Camera) -> (SldStatus, SldLocalization) {
    let image = SldImage {
        width: cam.width,
        height: cam.height,
        stride: 3 * cam.width as usize,
        format: SldPixelFormat::Rgb8 as u32,
        data: rgb.as_ptr(),
    };
    let mut out = SldLocalization::default();
    // SAFETY: valid handle, image buffer of the stated size, camera and out.
    let st = unsafe { localizer::sld_localizer_localize(h.0, &image, &camera(cam), &mut out) };
    (st, out)
}

fn quality(h: &Handle) -> (SldStatus, SldPoseQuality) {
    let mut q = SldPoseQuality::default();
    // SAFETY: valid handle and out.
    let st = unsafe { localizer::sld_localizer_last_quality(h.0, &mut q) };
    (st, q)
}

#[test]
fn noise_images_give_no_pose_and_the_kit_image_still_localises() {
    // The default kit of `sld model beacons` (16 beacons, 256 × 192).
    let kit = sld_train::beacon::beacon_kit(256, 192, 16, 1).expect("beacon kit");
    let mut raw = std::ptr::null_mut();
    // SAFETY: valid buffer and out pointer.
    let st = unsafe { localizer::sld_localizer_new(kit.model.as_ptr(), kit.model.len(), &mut raw) };
    assert_eq!(st, SldStatus::Ok);
    let h = Handle(raw);

    // The kit's image: a pose within a centimetre, its evidence accepted.
    let (st, out) = localize(&h, &kit.rgb, &kit.camera);
    assert_eq!(st, SldStatus::Ok);
    let c = kit.pose.centre();
    let err = ((out.pose.centre[0] - c[0]).powi(2)
        + (out.pose.centre[1] - c[1]).powi(2)
        + (out.pose.centre[2] - c[2]).powi(2))
    .sqrt();
    assert!(err < 0.01, "kit pose off by {err} m");
    let (st, q) = quality(&h);
    assert_eq!(st, SldStatus::Ok);
    assert_eq!((q.accepted, q.inliers), (1, out.inliers));
    assert!(q.inlier_ratio > 0.9 && q.visible_fraction > 0.9, "{q:?}");

    // 200 noise images: at least 99 % must give NO_POSE.
    let images = noise_images(200, 256, 192, 42);
    let mut posed = 0;
    let mut found_by_pnp = 0;
    for img in &images {
        let (st, _) = localize(&h, img, &kit.camera);
        assert!(matches!(st, SldStatus::Ok | SldStatus::NoPose), "{st:?}");
        posed += (st == SldStatus::Ok) as usize;
        let (qst, q) = quality(&h);
        if qst == SldStatus::Ok {
            found_by_pnp += 1;
            assert_eq!(q.accepted, (st == SldStatus::Ok) as u32);
        }
    }
    assert!(posed <= 2, "{posed} of 200 noise images were given a pose");

    // With the gate off the same images do give poses: the gate, not
    // chance, is what rejects them (the defect this test guards against).
    let off = SldGate::default();
    // SAFETY: valid handle and gate.
    assert_eq!(
        unsafe { localizer::sld_localizer_set_gate(h.0, &off) },
        SldStatus::Ok
    );
    let ungated = images
        .iter()
        .filter(|img| localize(&h, img, &kit.camera).0 == SldStatus::Ok)
        .count();
    assert_eq!(ungated, found_by_pnp);
    assert!(
        ungated >= 20,
        "only {ungated} noise images got a pose without the gate"
    );
}

#[test]
fn the_gate_is_read_set_and_checked() {
    let kit = sld_train::beacon::beacon_kit(128, 96, 12, 2).expect("beacon kit");
    let mut raw = std::ptr::null_mut();
    // SAFETY: valid buffer and out pointer.
    let st = unsafe { localizer::sld_localizer_new(kit.model.as_ptr(), kit.model.len(), &mut raw) };
    assert_eq!(st, SldStatus::Ok);
    let h = Handle(raw);
    let mut g = SldGate::default();
    // SAFETY: valid handle and out.
    assert_eq!(
        unsafe { localizer::sld_localizer_gate(h.0, &mut g) },
        SldStatus::Ok
    );
    assert_eq!(g, sld_core::Gate::default().into());

    // Before any call, and after a call that found no pose: NO_POSE, zeros.
    assert_eq!(quality(&h), (SldStatus::NoPose, SldPoseQuality::default()));

    // A gate the kit cannot meet: NO_POSE, the evidence still reported.
    let strict = SldGate { min_inliers: 13, ..g };
    // SAFETY: valid handle and gate.
    assert_eq!(
        unsafe { localizer::sld_localizer_set_gate(h.0, &strict) },
        SldStatus::Ok
    );
    assert_eq!(localize(&h, &kit.rgb, &kit.camera).0, SldStatus::NoPose);
    let (st, q) = quality(&h);
    assert_eq!((st, q.accepted, q.inliers), (SldStatus::Ok, 0, 12));

    // Out of range: rejected with a message, the old gate kept.
    for bad in [
        SldGate {
            min_inlier_ratio: 1.5,
            ..g
        },
        SldGate {
            min_visible_fraction: f32::NAN,
            ..g
        },
        SldGate {
            min_inlier_confidence: -1.0,
            ..g
        },
    ] {
        // SAFETY: valid handle and gate.
        let st = unsafe { localizer::sld_localizer_set_gate(h.0, &bad) };
        assert_eq!(st, SldStatus::InvalidArgument, "{bad:?}");
    }
    let mut now = SldGate::default();
    // SAFETY: valid handle and out.
    assert_eq!(
        unsafe { localizer::sld_localizer_gate(h.0, &mut now) },
        SldStatus::Ok
    );
    assert_eq!(now, strict);
    // SAFETY: NULL gate is reported, not read.
    assert_eq!(
        unsafe { localizer::sld_localizer_set_gate(h.0, std::ptr::null()) },
        SldStatus::NullPointer
    );
}
