//! `Localizer`: end to end through a hand-built network with a known
//! answer, and zero heap allocations per frame.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sld_core::model::{Activation, Conv2d, Graph, InputSpec, Layer, ModelInfo, Op, Provenance};
use sld_core::nalgebra::Vector3;
use sld_core::{position_error_m, rotation_error_deg, Camera, Image, Localizer, PixelFormat, Pose};
use sld_train::net::export::{to_sld_bytes, NamedTensor};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards unchanged to the system allocator; the counter is a
// const-initialised thread-local without a destructor (never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Network input 96×64 gray, stride 1. Two heads of 4 channels; each
/// channel is a 3×3 convolution, dilation 20, whose kernel is a single 1
/// at one tap: it shifts the image by (tap − 1)·20 px, so one bright blob
/// at `p` yields peaks at `p − (tap − 1)·20`, one per landmark.
const TAPS: [(usize, usize); 8] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)];

fn shift_model(landmarks: &[[f32; 3]]) -> Vec<u8> {
    let mut layers = vec![];
    let mut tensors = vec![];
    for head in 0..2 {
        let mut w = vec![0f32; 4 * 9];
        for k in 0..4 {
            let (ty, tx) = TAPS[head * 4 + k];
            w[k * 9 + ty * 3 + tx] = 1.0;
        }
        tensors.push(NamedTensor {
            name: format!("h{head}.weight"),
            shape: vec![4, 1, 3, 3],
            data: w,
        });
        layers.push(Layer {
            name: format!("h{head}"),
            op: Op::Conv2d(Conv2d {
                input: "image".into(),
                weight: format!("h{head}.weight"),
                bias: None,
                stride: [1, 1],
                padding: [20, 20, 20, 20],
                dilation: [20, 20],
                groups: 1,
                activation: Activation::None,
            }),
        });
    }
    let info = ModelInfo {
        graph: Graph {
            input: InputSpec {
                width: 96,
                height: 64,
                channels: 1,
                mean: vec![0.0],
                std: vec![1.0],
                normalize: Default::default(),
            },
            layers,
            outputs: vec!["h0".into(), "h1".into()],
        },
        stride: 1,
        landmarks: 8,
        heatmaps: Default::default(),
        scene: "shift".into(),
        provenance: Provenance::default(),
    };
    to_sld_bytes(&info, &tensors, landmarks).unwrap()
}

/// A 192×128 gray image (twice the network input) with one Gaussian blob.
fn blob_image(p_net: [f64; 2]) -> Vec<u8> {
    let (w, h) = (192, 128);
    // Pixel-centre scaling: net (u) ↔ image ((u + 0.5)·2 − 0.5).
    let c = [(p_net[0] + 0.5) * 2.0 - 0.5, (p_net[1] + 0.5) * 2.0 - 0.5];
    let mut img = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let d2 = (x as f64 - c[0]).powi(2) + (y as f64 - c[1]).powi(2);
            img[y * w + x] = (255.0 * (-d2 / (2.0 * 5.0 * 5.0)).exp()).round() as u8;
        }
    }
    img
}

/// The scene has 8 landmarks, below the default gate's 10 inliers (a map
/// has hundreds): the gate's other thresholds stay as they are.
fn eight_landmark_gate() -> sld_core::Gate {
    sld_core::Gate {
        min_inliers: 8,
        ..sld_core::Gate::default()
    }
}

fn scene() -> (Camera, Pose, Vec<[f32; 3]>, [f64; 2]) {
    let camera = Camera::pinhole(192, 128, 150.0, 95.5, 63.5).unwrap();
    let pose = Pose::from_axis_angle(Vector3::new(0.1, -0.2, 0.05), Vector3::new(0.3, -0.1, 0.4));
    let p = [47.3, 31.6];
    let landmarks = TAPS
        .iter()
        .enumerate()
        .map(|(l, &(ty, tx))| {
            // The peak of this landmark's map, in network pixels, then in image pixels.
            let q = [p[0] - (tx as f64 - 1.0) * 20.0, p[1] - (ty as f64 - 1.0) * 20.0];
            let q_img = [(q[0] + 0.5) * 2.0 - 0.5, (q[1] + 0.5) * 2.0 - 0.5];
            let n = camera.unproject(q_img).unwrap();
            let z = 2.0 + 0.4 * l as f64;
            let xw = pose.inverse().transform(&Vector3::new(n[0] * z, n[1] * z, z));
            [xw[0] as f32, xw[1] as f32, xw[2] as f32]
        })
        .collect();
    (camera, pose, landmarks, p)
}

#[test]
fn localizes_through_resize_two_heads_and_dilated_convolutions() {
    let (camera, pose, landmarks, p) = scene();
    let bytes = shift_model(&landmarks);
    let mut loc = Localizer::new(bytes.as_slice()).unwrap();
    loc.gate = eight_landmark_gate();
    assert!(loc.model().is_zero_copy());
    let img = blob_image(p);
    let image = Image::new(192, 128, 192, PixelFormat::Gray8, &img).unwrap();
    let r = loc.localize(&image, &camera).unwrap();
    assert_eq!(r.detections, 8);
    assert_eq!(r.inliers, 8);
    // f32 landmarks and 8-bit pixels limit the accuracy.
    assert!(
        rotation_error_deg(&pose, &r.pose) < 0.5,
        "{} deg",
        rotation_error_deg(&pose, &r.pose)
    );
    assert!(
        position_error_m(&pose, &r.pose) < 0.05,
        "{} m",
        position_error_m(&pose, &r.pose)
    );
    assert!(r.times.cnn_us > 0.0 && r.times.pnp_us > 0.0);

    // A camera for another image size is refused.
    let other = Camera::pinhole(640, 480, 150.0, 95.5, 63.5).unwrap();
    assert!(loc.localize(&image, &other).is_err());
}

#[test]
fn localize_makes_no_allocation_per_frame() {
    let (camera, _, landmarks, p) = scene();
    let bytes = shift_model(&landmarks);
    let mut loc = Localizer::new(bytes.clone()).unwrap();
    loc.gate = eight_landmark_gate();
    let img = blob_image(p);
    let dark = vec![0u8; 192 * 128];
    // Padded rows: stride larger than the width.
    let mut padded = vec![7u8; 200 * 128];
    for y in 0..128 {
        padded[y * 200..y * 200 + 192].copy_from_slice(&img[y * 192..(y + 1) * 192]);
    }
    let frames = [
        Image::new(192, 128, 192, PixelFormat::Gray8, &img).unwrap(),
        Image::new(192, 128, 200, PixelFormat::Gray8, &padded).unwrap(),
        Image::new(192, 128, 192, PixelFormat::Gray8, &dark).unwrap(),
    ];
    let _ = loc.localize(&frames[0], &camera); // warm-up
    let before = allocations();
    for _ in 0..3 {
        assert!(loc.localize(&frames[0], &camera).is_ok());
        assert!(loc.localize(&frames[1], &camera).is_ok());
        // No blob: no detections, an error — also without allocating.
        assert!(loc.localize(&frames[2], &camera).is_err());
    }
    assert_eq!(allocations() - before, 0);
    assert!(loc.arena_bytes() > 0);
}

/// Threads split every kind of layer and give the same bits as one thread
/// (issue 17), on each network `sld model random` makes: Lite0 (1×1 and
/// depthwise blocked, strided stem, dilated ASPP), the small one, and
/// XFeat's trunk (1 → 4 and 8 → 8 channel 3×3 layers, whose implicit GEMM
/// splits its columns; strided direct layers from planar input; adds and
/// resizes split over channel blocks, which 320×192 is large enough for).
#[test]
fn threads_give_bit_identical_heatmaps_on_every_layer_kind() {
    let dir = std::env::temp_dir().join(format!("sld-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for arch in ["lite0", "small", "xfeat"] {
        let model = dir.join(format!("{arch}.sld"));
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_sld"))
            .args([
                "model",
                "random",
                "--arch",
                arch,
                "--landmarks",
                "40",
                "--width",
                "320",
                "--height",
                "192",
                "--out",
            ])
            .arg(&model)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{arch}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let bytes = std::fs::read(&model).unwrap();
        let rgb: Vec<u8> = (0..320 * 192 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let image = Image::new(320, 192, 960, PixelFormat::Rgb8, &rgb).unwrap();
        let maps = |threads: usize| {
            let mut loc = Localizer::new(bytes.as_slice()).unwrap();
            loc.set_threads(threads).unwrap();
            loc.heatmaps(&image).unwrap();
            loc.head_output(0).unwrap().to_vec()
        };
        let one = maps(1);
        assert!(one.iter().any(|v| *v != 0.0), "{arch}");
        for threads in [2, 3, 4] {
            let got = maps(threads);
            let same = got.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same && got.len() == one.len(), "{arch}: {threads} threads differ");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An ensemble's heads share one backbone (issue 17, goal 4): each head
/// adds only its own layers to the plan, so the interpreter runs the
/// backbone once and every head from its features.
#[test]
fn heads_add_only_their_own_layers_to_the_plan() {
    let dir = std::env::temp_dir().join(format!("sld-heads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let steps = |heads: usize| {
        let path = dir.join(format!("h{heads}.sld"));
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_sld"))
            .args([
                "model",
                "random",
                "--landmarks",
                "10",
                "--width",
                "64",
                "--height",
                "48",
                "--heads",
            ])
            .arg(heads.to_string())
            .arg("--out")
            .arg(&path)
            .output()
            .unwrap();
        assert!(st.status.success());
        let m = sld_core::model::Model::load(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(m.plan().outputs.len(), heads);
        assert_eq!(m.landmarks().len(), 10 * heads);
        m.plan().steps.len()
    };
    let (one, two, four) = (steps(1), steps(2), steps(4));
    let per_head = two - one;
    assert!(
        per_head > 0 && per_head < one / 4,
        "a head is {per_head} of {one} steps"
    );
    assert_eq!(four, one + 3 * per_head);
    let _ = std::fs::remove_dir_all(&dir);
}
