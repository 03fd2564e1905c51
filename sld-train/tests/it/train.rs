//! Training end to end on a tiny rendered scene: resume continues exactly,
//! the exported model loads in sld-core, and training lowers the loss and
//! the detections' pixel error measured through the Localizer.

use std::path::{Path, PathBuf};

use sld_train::data::scene::SceneDir;
use sld_train::net::arch::Arch;
use sld_train::synth::SynthOptions;
use sld_train::train::{train_full, Control, TrainOptions};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sld-train-test-{name}-{}", std::process::id()))
}

/// A 48-image 128×72 scene (one session, every 5th image held out) with 16 landmarks.
fn tiny_scene(dir: &Path) -> PathBuf {
    tiny_scene_seeded(dir, 2, 16)
}

/// [`tiny_scene`] with another room (`seed`) and landmark count.
fn tiny_scene_seeded(dir: &Path, seed: u64, count: usize) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let synth = SynthOptions {
        seed,
        images: 48,
        sessions: 1,
        width: 128,
        height: 72,
        point_density: 40.0,
        progress: false,
        ..SynthOptions::default()
    };
    let select = sld_train::landmarks::select::SelectOptions {
        min_track: 5,
        radius: 1.0,
        ..Default::default()
    };
    crate::localizes::room_with_landmarks(dir, &synth, select, count)
}

fn options(landmarks: PathBuf, epochs: usize) -> TrainOptions {
    TrainOptions {
        arch: Arch::Small,
        width: 8,
        head_channels: 16,
        input_width: 128,
        input_height: 72,
        landmarks,
        epochs,
        batch: 8,
        lr: 2e-3,
        seed: 3,
        depth_tolerance: 0.1,
        sigma: 1.5,
        jitter: 0.2,
        validate_every: 0,
        pos_weight: 10.0,
        backbone: None,
        buffer_copies: 1,
        geometric_aug: false,
        rotation_aug: false,
        novel_view_aug: false,
        head: Default::default(),
        input: Default::default(),
        depth_variant: None,
        loss: Default::default(),
        heads: 1,
        device: sld_train::device::DeviceChoice::Cpu,
        devices: vec![],
        world: None,
    }
}

#[test]
fn resume_continues_exactly_and_training_learns() {
    let scene = tmp("scene");
    let lm = tiny_scene(&scene);
    let (a, b) = (tmp("run-a"), tmp("run-b"));
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
    // Straight: 4 epochs. Interrupted: 2 epochs, then resume to 4.
    let go = Control::default();
    let straight = train_full(&scene, &a, &options(lm.clone(), 4), false, false, &go).unwrap();
    let part = Control {
        stop_after: Some(2),
        ..Control::default()
    };
    train_full(&scene, &b, &options(lm.clone(), 4), false, false, &part).unwrap();
    let resumed = train_full(&scene, &b, &options(lm.clone(), 4), true, false, &go).unwrap();
    assert_eq!(resumed.epochs.len(), 2);
    assert_eq!(resumed.epochs[0].epoch, 3);
    let (ma, mb) = (
        std::fs::read(a.join("model.sld")).unwrap(),
        std::fs::read(b.join("model.sld")).unwrap(),
    );
    let (la, lb) = (straight.epochs[3].loss, resumed.epochs[1].loss);
    assert!((la - lb).abs() <= 1e-9 * la.abs(), "loss {la} vs {lb}");
    // The models differ only in the provenance metadata (date, command).
    let wa = sld_core::model::Model::load(&ma[..]).unwrap();
    let wb = sld_core::model::Model::load(&mb[..]).unwrap();
    assert_eq!(wa.weights(), wb.weights(), "resumed weights differ");
    // metrics.jsonl has all four epochs after the resume.
    let lines = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4);
    // Asking to resume a finished run is a clear error.
    let e = train_full(&scene, &b, &options(lm.clone(), 4), true, false, &go).unwrap_err();
    // A stop request ends the run before its next step, keeping the checkpoint.
    let stop = Control::default();
    stop.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let c = tmp("run-c");
    let _ = std::fs::remove_dir_all(&c);
    let r = train_full(&scene, &c, &options(lm.clone(), 4), false, false, &stop).unwrap();
    assert!(r.interrupted && r.epochs.is_empty());
    let _ = std::fs::remove_dir_all(&c);
    assert!(format!("{e:#}").contains("more --epochs"), "{e:#}");
    // Loss goes down.
    assert!(straight.epochs[3].loss < straight.epochs[0].loss);
    // The export runs in sld-core's Localizer on held-out images.
    let sd = SceneDir::open(&scene).unwrap();
    let test = sd.part("test").unwrap();
    assert!(!test.is_empty());
    let r = sld_train::eval::evaluate(&ma, &sd, &test, &Default::default()).unwrap();
    assert_eq!(r.images, test.len());
    for d in [a, b, scene] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Head mode: the exported model carries the backbone file's weights
/// untouched and a trained head; the loss falls.
#[test]
fn head_mode_trains_only_the_head_on_a_frozen_backbone() {
    use sld_train::net::builder::GraphBuilder;
    use sld_train::net::lite0::efficientnet_lite0_s8;
    let scene = tmp("head-scene");
    let lm = tiny_scene(&scene);
    // A random "pre-trained" backbone file (the ImageNet one in real use).
    let mut b = GraphBuilder::new(3, 72, 128, 77);
    efficientnet_lite0_s8(&mut b);
    let (_, tensors) = b.finish(&[], 8, "bb");
    let bb = tmp("backbone.safetensors");
    sld_train::imagenet::write_weights(&bb, &tensors, "test").unwrap();
    let out = tmp("head-run");
    let _ = std::fs::remove_dir_all(&out);
    let mut o = options(lm, 3);
    o.backbone = Some(bb.clone());
    o.buffer_copies = 2;
    o.geometric_aug = true;
    o.head_channels = 16;
    let r = train_full(&scene, &out, &o, false, false, &Control::default()).unwrap();
    assert!(r.epochs[2].loss < r.epochs[0].loss, "{:?}", r.epochs);
    let bytes = std::fs::read(out.join("model.sld")).unwrap();
    let m = sld_core::model::Model::load(&bytes[..]).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for t in &tensors {
        let v = st.tensor(&t.name).unwrap();
        let got: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(got, t.data, "backbone tensor {} changed", t.name);
    }
    assert!(st.names().iter().any(|n| n.starts_with("head.")));
    assert_eq!(m.landmarks().len(), 16);
    for p in [out, scene] {
        let _ = std::fs::remove_dir_all(p);
    }
    let _ = std::fs::remove_file(bb);
}

/// Without depth maps (a COLMAP import), labels come from the visibility
/// file next to the landmarks; without either, training refuses to run
/// rather than learn from nothing.
#[test]
fn labels_fall_back_to_the_visibility_file() {
    let scene = tmp("nodepth-scene");
    let lm = tiny_scene(&scene);
    for e in std::fs::read_dir(scene.join("images")).unwrap() {
        let p = e.unwrap().path();
        if p.to_str().unwrap().ends_with(".depth.png") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let out = tmp("nodepth-run");
    let _ = std::fs::remove_dir_all(&out);
    let r = train_full(
        &scene,
        &out,
        &options(lm.clone(), 1),
        false,
        false,
        &Control::default(),
    )
    .unwrap();
    assert_eq!(r.epochs.len(), 1);
    assert!(r.epochs[0].loss > 0.0);
    let vis = lm.with_file_name(
        lm.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace("landmarks-", "visibility-"),
    );
    std::fs::remove_file(&vis).unwrap();
    let e = train_full(&scene, &out, &options(lm, 1), false, false, &Control::default()).unwrap_err();
    assert!(
        format!("{e:#}").contains("no landmark is labelled visible"),
        "{e:#}"
    );
    for p in [out, scene] {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Reads every f32 tensor of a safetensors buffer by name.
fn tensors_of(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<f32>> {
    super::common::f32_tensors(bytes)
}

/// Backbone mode on two rooms: every scene's exported model carries the one
/// shared backbone and its own head; resuming continues bit for bit; the
/// backbone file then serves head mode on a third room, frozen.
#[test]
fn backbone_mode_shares_one_backbone_and_feeds_head_mode() {
    use sld_train::train::backbone::{train_backbone, BackboneScene};
    let (sa, sb, sc) = (tmp("bb-scene-a"), tmp("bb-scene-b"), tmp("bb-scene-c"));
    let scenes = vec![
        BackboneScene {
            landmarks: tiny_scene_seeded(&sa, 2, 16),
            root: sa.clone(),
        },
        BackboneScene {
            landmarks: tiny_scene_seeded(&sb, 5, 12),
            root: sb.clone(),
        },
    ];
    let o = options(scenes[0].landmarks.clone(), 3);
    let (a, b) = (tmp("bb-run-a"), tmp("bb-run-b"));
    for d in [&a, &b] {
        let _ = std::fs::remove_dir_all(d);
    }
    let go = Control::default();
    let straight = train_backbone(&scenes, &a, &o, false, false, &go).unwrap();
    // Every batch of both scenes once per epoch: 39 + 39 training images, batch 8.
    let sizes: Vec<usize> = scenes
        .iter()
        .map(|s| SceneDir::open(&s.root).unwrap().part("train").unwrap().len())
        .collect();
    let expect: usize = sizes.iter().map(|n| n.div_ceil(8)).sum();
    assert!(
        straight.epochs.iter().all(|e| e.steps == expect),
        "{:?}",
        straight.epochs
    );
    assert!(
        straight.epochs[2].loss < straight.epochs[0].loss,
        "{:?}",
        straight.epochs
    );
    assert_eq!(straight.epochs[0].scenes.len(), 2);
    // The curves are plotted every epoch, one line per scene.
    let png = image::open(a.join("metrics.png")).unwrap();
    assert_eq!((png.width(), png.height()), (960, 240));
    // The backbone file equals the backbone inside each scene's model; the heads differ.
    let bb = tensors_of(&std::fs::read(&straight.backbone).unwrap());
    assert!(bb.keys().all(|n| !n.starts_with("head.")) && !bb.is_empty());
    let models: Vec<_> = straight
        .models
        .iter()
        .map(|m| tensors_of(&std::fs::read(m).unwrap()))
        .collect();
    for m in &models {
        for (n, v) in &bb {
            assert_eq!(&m[n], v, "backbone tensor {n}");
        }
    }
    assert_ne!(
        models[0]["head.block0.conv.weight"],
        models[1]["head.block0.conv.weight"]
    );
    assert_eq!(models[0]["head.heatmaps.bias"].len(), 16);
    assert_eq!(models[1]["head.heatmaps.bias"].len(), 12);
    // Both models run in sld-core.
    for (m, s) in straight.models.iter().zip(&scenes) {
        let sd = SceneDir::open(&s.root).unwrap();
        let test = sd.part("test").unwrap();
        let r =
            sld_train::eval::evaluate(&std::fs::read(m).unwrap(), &sd, &test, &Default::default()).unwrap();
        assert_eq!(r.images, test.len());
    }
    // Interrupted after 1 epoch, resumed to 3: the same weights, bit for bit.
    let part = Control {
        stop_after: Some(1),
        ..Control::default()
    };
    train_backbone(&scenes, &b, &o, false, false, &part).unwrap();
    let resumed = train_backbone(&scenes, &b, &o, true, false, &go).unwrap();
    assert_eq!(resumed.epochs.first().map(|e| e.epoch), Some(2));
    for (ma, mb) in straight.models.iter().zip(&resumed.models) {
        let (wa, wb) = (std::fs::read(ma).unwrap(), std::fs::read(mb).unwrap());
        let (wa, wb) = (
            sld_core::model::Model::load(&wa[..]).unwrap(),
            sld_core::model::Model::load(&wb[..]).unwrap(),
        );
        assert_eq!(wa.weights(), wb.weights(), "resumed weights differ");
    }
    // Resuming with other scenes is refused.
    let e = train_backbone(&scenes[..1], &b, &o, true, false, &go).unwrap_err();
    assert!(format!("{e:#}").contains("other scenes"), "{e:#}");
    // Head mode on an unseen room over the trained (small) backbone.
    let lc = tiny_scene_seeded(&sc, 7, 10);
    let hc = tmp("bb-head-run");
    let _ = std::fs::remove_dir_all(&hc);
    let mut ho = options(lc, 2);
    ho.width = 3; // ignored: the backbone file names its own architecture
    ho.backbone = Some(straight.backbone.clone());
    let r = train_full(&sc, &hc, &ho, false, false, &go).unwrap();
    assert!(r.epochs[1].loss < r.epochs[0].loss, "{:?}", r.epochs);
    let m = tensors_of(&std::fs::read(hc.join("model.sld")).unwrap());
    for (n, v) in &bb {
        assert_eq!(&m[n], v, "frozen backbone tensor {n} changed");
    }
    assert_eq!(m["head.heatmaps.bias"].len(), 10);
    for d in [a, b, hc, sa, sb, sc] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Head mode with an ensemble (SLD*'s heads over landmark subsets): one
/// head per consecutive subset, exported as the model's outputs in landmark
/// order; and the heads are independent, as SLD*'s separate networks are:
/// changing the landmarks of the other subsets leaves a head's trained
/// weights unchanged, while its own subset's change moves them.
#[test]
fn head_mode_ensemble_trains_independent_heads_over_landmark_subsets() {
    use sld_train::net::arch::small_backbone;
    use sld_train::net::arch::BackboneKind;
    use sld_train::net::builder::GraphBuilder;
    use sld_train::train::backbone::write_backbone;
    let scene = tmp("ens-scene");
    let lm = tiny_scene(&scene);
    let mut b = GraphBuilder::new(3, 72, 128, 41);
    small_backbone(&mut b, 8);
    let (_, tensors) = b.finish(&[], 8, "bb");
    let bb = tmp("ens-backbone.safetensors");
    write_backbone(&bb, BackboneKind::Small { width: 8 }, &tensors).unwrap();
    let mut o = options(lm.clone(), 3);
    o.backbone = Some(bb.clone());
    o.heads = 3;
    let run = |o: &TrainOptions, name: &str| {
        let out = tmp(name);
        let _ = std::fs::remove_dir_all(&out);
        let r = train_full(&scene, &out, o, false, false, &Control::default()).unwrap();
        let bytes = std::fs::read(out.join("model.sld")).unwrap();
        let _ = std::fs::remove_dir_all(&out);
        (r, bytes)
    };
    let (r, bytes) = run(&o, "ens-run");
    assert!(r.epochs[2].loss < r.epochs[0].loss, "{:?}", r.epochs);
    let m = sld_core::model::Model::load(&bytes[..]).unwrap();
    assert_eq!(m.landmarks().len(), 16);
    assert_eq!(m.plan().outputs.len(), 3);
    let w = tensors_of(&bytes);
    // 16 landmarks in 3 consecutive subsets: 6, 5, 5.
    for (k, n) in [6, 5, 5].into_iter().enumerate() {
        assert_eq!(w[&format!("head.e{k}.heatmaps.bias")].len(), n);
    }
    for t in &tensors {
        assert_eq!(w[&t.name], t.data, "frozen backbone tensor {} changed", t.name);
    }
    // The model localizes through sld-core with its three outputs.
    let sd = SceneDir::open(&scene).unwrap();
    let test = sd.part("test").unwrap();
    let e = sld_train::eval::evaluate(&bytes, &sd, &test, &Default::default()).unwrap();
    assert_eq!(e.images, test.len());
    // Permute the coordinates of landmarks 11..16 (the last subset): its
    // labels change, the first two subsets' do not.
    let text = std::fs::read_to_string(&lm).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let coords: Vec<String> = lines[12..17]
        .iter()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    for (i, c) in coords.iter().rev().enumerate() {
        let id = lines[12 + i].split_once(' ').unwrap().0.to_string();
        lines[12 + i] = format!("{id} {c}");
    }
    let lm2 = lm.with_file_name("landmarks-16-permuted.txt");
    std::fs::write(&lm2, lines.join("\n") + "\n").unwrap();
    let mut o2 = o.clone();
    o2.landmarks = lm2;
    let (_, bytes2) = run(&o2, "ens-run-permuted");
    let w2 = tensors_of(&bytes2);
    let max_diff = |prefix: &str| {
        w.iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .flat_map(|(n, a)| a.iter().zip(&w2[n]).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max)
    };
    for k in 0..2 {
        let d = max_diff(&format!("head.e{k}."));
        assert!(d <= 1e-6, "head {k} changed by {d} when only subset 2 moved");
    }
    assert!(
        max_diff("head.e2.") > 1e-3,
        "head 2 did not see its labels change"
    );
    // Resuming with another ensemble size is refused.
    let e = {
        let out = tmp("ens-resume");
        let _ = std::fs::remove_dir_all(&out);
        let part = Control {
            stop_after: Some(1),
            ..Control::default()
        };
        train_full(&scene, &out, &o, false, false, &part).unwrap();
        let mut o1 = o.clone();
        o1.heads = 1;
        let e = train_full(&scene, &out, &o1, true, false, &Control::default()).unwrap_err();
        let _ = std::fs::remove_dir_all(&out);
        e
    };
    assert!(format!("{e:#}").contains("head(s)"), "{e:#}");
    // More heads than landmarks is a clear error.
    let mut o3 = o.clone();
    o3.heads = 17;
    let e = train_full(&scene, &tmp("ens-17"), &o3, false, false, &Control::default()).unwrap_err();
    assert!(format!("{e:#}").contains("more than the 16 landmarks"), "{e:#}");
    let _ = std::fs::remove_dir_all(scene);
    let _ = std::fs::remove_file(bb);
}
