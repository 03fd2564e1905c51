//! Tests of `gate`.

use sld_core::{Gate, GateFailure, PoseQuality};

fn strong() -> PoseQuality {
    PoseQuality {
        inliers: 20,
        detections: 30,
        inlier_ratio: 20.0 / 30.0,
        inlier_confidence: 15.0,
        expected_visible: 60,
        visible_fraction: 20.0 / 60.0,
        rms_px: 2.0,
    }
}

#[test]
fn each_threshold_rejects_on_its_own() {
    let g = Gate {
        min_inlier_confidence: 5.0,
        ..Gate::default()
    };
    assert_eq!(g.check(&strong()), Ok(()));
    let cases = [
        (
            PoseQuality {
                inliers: 9,
                ..strong()
            },
            GateFailure::Inliers,
        ),
        (
            PoseQuality {
                inlier_ratio: 0.45,
                ..strong()
            },
            GateFailure::InlierRatio,
        ),
        (
            PoseQuality {
                inlier_confidence: 4.0,
                ..strong()
            },
            GateFailure::InlierConfidence,
        ),
        (
            PoseQuality {
                visible_fraction: 0.1,
                ..strong()
            },
            GateFailure::VisibleFraction,
        ),
        (
            PoseQuality {
                inlier_ratio: f32::NAN,
                ..strong()
            },
            GateFailure::InlierRatio,
        ),
    ];
    for (q, want) in cases {
        assert_eq!(g.check(&q), Err(want), "{q:?}");
        // OFF accepts any real evidence; a NaN never passes a threshold.
        assert_eq!(Gate::OFF.check(&q).is_ok(), !q.inlier_ratio.is_nan(), "{q:?}");
    }
}

#[test]
fn ranges_are_checked() {
    assert!(Gate::default().validate().is_ok());
    assert!(Gate::OFF.validate().is_ok());
    for g in [
        Gate {
            min_inlier_ratio: 1.5,
            ..Gate::OFF
        },
        Gate {
            min_inlier_ratio: f32::NAN,
            ..Gate::OFF
        },
        Gate {
            min_visible_fraction: -0.1,
            ..Gate::OFF
        },
        Gate {
            min_inlier_confidence: f32::INFINITY,
            ..Gate::OFF
        },
    ] {
        assert!(g.validate().is_err(), "{g:?}");
    }
}
