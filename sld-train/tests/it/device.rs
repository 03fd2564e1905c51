//! `--device`: the choice is reported, a device that cannot be had is a
//! clear error that leaves the output folder untouched, and the device is
//! not part of a checkpoint (a run resumes on another device, bit for bit
//! the same on the CPU). On a build without `cuda` (this one, in CI) every
//! choice resolves to the CPU, so what runs here is the device-generic
//! path; `scripts/gpu-check.sh` runs the CUDA side where there is a GPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{f32_tensors, run, sld, small_scene};

/// A 16-image 96×64 scene with 8 landmarks named `name`: (scene, landmarks file).
fn scene(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    small_scene(dir, name, 16, 8, 5)
}

/// The small network, input and batch of every run here.
const SMALL: [&str; 14] = [
    "--arch",
    "small",
    "--width",
    "8",
    "--head-channels",
    "8",
    "--input-width",
    "96",
    "--input-height",
    "64",
    "--batch",
    "4",
    "--seed",
    "3",
];

fn train(scene: &Path, lm: &Path, out: &Path, epochs: u32, device: &str, resume: bool) -> Command {
    let mut c = sld();
    c.args(["train", "full"])
        .args(SMALL)
        .args([
            "--validate-every",
            "0",
            "--epochs",
            &epochs.to_string(),
            "--device",
            device,
        ])
        .arg("--scene")
        .arg(scene)
        .arg("--landmarks")
        .arg(lm)
        .arg("--out")
        .arg(out);
    if resume {
        c.arg("--resume");
    }
    c
}

/// `sld train backbone` on two scenes for 2 epochs, without augmentation.
fn train_backbone(scenes: [(&Path, &Path); 2], out: &Path) -> Command {
    let mut c = sld();
    c.args(["train", "backbone"]).args(SMALL).args([
        "--jitter",
        "0",
        "--validate-every",
        "0",
        "--epochs",
        "2",
    ]);
    for (s, _) in scenes {
        c.arg("--scene").arg(s);
    }
    for (_, lm) in scenes {
        c.arg("--landmarks").arg(lm);
    }
    c.arg("--out").arg(out);
    c
}

/// A TCP port nobody listens on now, for a run's MASTER_PORT.
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port().to_string()
}

#[test]
fn the_device_is_reported_checked_first_and_not_saved_in_checkpoints() {
    let dir = std::env::temp_dir().join(format!("sld-device-{}", std::process::id()));
    let (s, lm) = scene(&dir, "scene");
    let cuda_built = sld_train::device::CUDA_BUILT;

    // A device this build cannot have: a clear error, nothing written.
    if !cuda_built {
        let out = dir.join("refused");
        let o = train(&s, &lm, &out, 1, "cuda:1", false).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("--device cuda:1")
                && err.contains("built without CUDA")
                && err.contains("--features cuda"),
            "{err}"
        );
        assert!(!out.exists(), "a refused device must leave no output folder");
    }
    let bad = train(&s, &lm, &dir.join("bad"), 1, "cuda:x", false)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("give cpu, cuda"));

    // Two epochs on the CPU in one go, against one epoch on the CPU and a
    // resume with `auto` (the CPU here): the same weights, bit for bit.
    let straight = dir.join("straight");
    let o = run(&mut train(&s, &lm, &straight, 2, "cpu", false));
    assert!(String::from_utf8_lossy(&o.stderr).contains("training on cpu"));
    let split = dir.join("split");
    run(&mut train(&s, &lm, &split, 1, "cpu", false));
    let o = run(&mut train(&s, &lm, &split, 2, "auto", true));
    let said = String::from_utf8_lossy(&o.stderr);
    let want = if cuda_built {
        "training on "
    } else {
        "training on cpu"
    };
    assert!(said.contains(want), "{said}");
    if !cuda_built {
        let a = std::fs::read(straight.join("model.sld")).unwrap();
        let b = std::fs::read(split.join("model.sld")).unwrap();
        let tensors = |bytes: &[u8]| -> std::collections::BTreeMap<String, Vec<u8>> {
            let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
            st.tensors()
                .into_iter()
                .map(|(n, v)| (n, v.data().to_vec()))
                .collect()
        };
        assert_eq!(tensors(&a), tensors(&b));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Loss `Σ y² / 2 + Σ y·r` over every output map `y` (`r` a fixed random
/// map, so no gradient is symmetric by accident) and its gradient for
/// every weight, on `dev`: on the CPU with its custom ops or, under
/// `generic`, the Candle ops CUDA runs.
fn loss_and_gradients(
    net: &sld_train::net::arch::Network,
    input: &[usize; 4],
    dev: &candle_core::Device,
    generic: bool,
) -> (f64, std::collections::BTreeMap<String, Vec<f32>>) {
    use candle_core::{Tensor, Var};
    use sld_train::net::graph::{forward, with_generic_ops};
    let dev = dev.clone();
    let mut rng = sld_core::rng::SplitMix64::new(11);
    let mut noise = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.unit_f64() as f32 * 2.0 - 1.0).collect() };
    let vars: Vec<(String, Var)> = net
        .tensors
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                Var::from_vec(t.data.clone(), t.shape.as_slice(), &dev).unwrap(),
            )
        })
        .collect();
    let weights = vars
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let x = Tensor::from_vec(noise(input.iter().product()), input.as_slice(), &dev).unwrap();
    let run = || forward(&net.info.graph, &weights, &x).unwrap();
    let ys = if generic { with_generic_ops(run) } else { run() };
    let mut loss = Tensor::new(0f32, &dev).unwrap();
    for y in &ys {
        let r = Tensor::from_vec(noise(y.elem_count()), y.dims(), &dev).unwrap();
        let term = ((y.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap()
            + (y * r).unwrap().sum_all().unwrap())
        .unwrap();
        loss = (loss + term).unwrap();
    }
    let grads = loss.backward().unwrap();
    let g = vars
        .iter()
        .map(|(n, v)| {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {n}"));
            (n.clone(), g.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        })
        .collect();
    (loss.to_scalar::<f32>().unwrap() as f64, g)
}

/// The networks of each training mode: full (small backbone + scene head;
/// Lite0 + ASPP), head (the scene and wide heads on backbone features),
/// backbone (two light heads), at 48×32.
fn mode_networks() -> Vec<(&'static str, sld_train::net::arch::Network)> {
    use sld_train::net::arch::{add_heads, build, BackboneKind, HeadKind, NetSpec};
    use sld_train::net::builder::GraphBuilder;
    let spec = |heads: usize| NetSpec {
        input_width: 48,
        input_height: 32,
        head_channels: 8,
        heads,
        seed: 4,
        heatmaps: Default::default(),
        input: Default::default(),
    };
    // Head mode trains the head alone on backbone features (16 channels
    // at 1/8 of 96×64 here).
    let head_only = |kind: HeadKind| {
        let mut b = GraphBuilder::new(16, 8, 12, 5);
        let outs = add_heads(&mut b, kind, sld_core::model::INPUT, 8, 5, 1);
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let (info, tensors) = b.finish(&refs, 1, "p");
        sld_train::net::arch::Network {
            info,
            tensors,
            feature_channels: 16,
        }
    };
    vec![
        (
            "full, small + scene",
            build(
                BackboneKind::Small { width: 8 },
                HeadKind::Scene,
                &spec(1),
                5,
                "p",
            ),
        ),
        (
            "full, lite0 + aspp",
            build(BackboneKind::Lite0S8, HeadKind::Aspp, &spec(1), 5, "p"),
        ),
        ("head, scene", head_only(HeadKind::Scene)),
        ("head, wide", head_only(HeadKind::Wide)),
        (
            "backbone, small + 2 light heads",
            build(
                BackboneKind::Small { width: 8 },
                HeadKind::Light,
                &spec(2),
                6,
                "p",
            ),
        ),
    ]
}

/// One training step's loss and every gradient on the CPU with its custom
/// ops against `(dev, generic)`, within 1e-4 relative (gradients: of the
/// tensor's largest magnitude).
fn assert_step_parity(dev: &candle_core::Device, generic: bool) {
    for (what, net) in mode_networks() {
        let g = &net.info.graph.input;
        let input = [2, g.channels as usize, g.height as usize, g.width as usize];
        let (la, ga) = loss_and_gradients(&net, &input, &candle_core::Device::Cpu, false);
        let (lb, gb) = loss_and_gradients(&net, &input, dev, generic);
        assert!(
            (la - lb).abs() <= 1e-4 * la.abs().max(1.0),
            "{what}: loss {la} against {lb}"
        );
        assert_eq!(ga.len(), net.tensors.len());
        for (name, a) in &ga {
            let b = &gb[name];
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                worst <= 1e-4 * scale,
                "{what}: gradient of {name} differs by {worst} (scale {scale})"
            );
        }
    }
}

/// What CUDA runs instead of the CPU's custom ops (Candle's `conv2d` for
/// k×k convolutions, a broadcast bias add) gives the same loss and every
/// gradient within 1e-4 relative, on the networks of each training mode.
/// The custom ops' own gradients are checked against finite differences
/// in `net::unfold` and `net::bias`; this checks the switch between them.
#[test]
fn the_ops_cuda_runs_give_the_cpu_ops_loss_and_gradients() {
    assert_step_parity(&candle_core::Device::Cpu, true);
}

/// The same step on the first CUDA GPU against the CPU (run by
/// `scripts/gpu-check.sh`; needs a `cuda` build and a GPU).
#[test]
#[cfg_attr(
    not(feature = "cuda"),
    ignore = "needs --features cuda and a GPU: scripts/gpu-check.sh"
)]
fn a_cuda_training_step_gives_the_cpu_loss_and_gradients() {
    let dev = sld_train::device::open(sld_train::device::DeviceChoice::Cuda(0))
        .unwrap_or_else(|e| panic!("this check needs a CUDA GPU: {e}"));
    assert_step_parity(&dev, false);
}

/// Every tensor of a `.sld` (safetensors) file as `f32`, by name.
fn weights(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    f32_tensors(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The largest difference between two weight sets, relative to each
/// tensor's largest magnitude.
fn worst_relative(
    a: &std::collections::BTreeMap<String, Vec<f32>>,
    b: &std::collections::BTreeMap<String, Vec<f32>>,
) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .map(|(n, x)| {
            let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            x.iter().zip(&b[n]).fold(0f32, |m, (p, q)| m.max((p - q).abs())) / scale
        })
        .fold(0f32, f32::max)
}

/// `--devices cpu,cpu[,cpu]`: N ranks, each computing its shard of every
/// batch of 4 and summing gradients through the in-process all-reduce,
/// give the weights one rank gives with the whole batch, to float
/// rounding, in full and in backbone mode. Three ranks split a batch of 4
/// unevenly (1, 1, 2) and the epoch's last, short batch leaves a rank
/// empty. (No augmentation: each rank draws its own stream.)
#[test]
fn n_ranks_on_shards_give_the_weights_of_one_rank_on_the_whole_batch() {
    let dir = std::env::temp_dir().join(format!("sld-ranks-{}", std::process::id()));
    let (s, lm) = scene(&dir.join("a"), "room-a");
    let (s2, lm2) = scene(&dir.join("b"), "room-b");
    let full = |out: &Path, devices: Option<&str>| {
        let mut c = train(&s, &lm, out, 3, "cpu", false);
        c.args(["--jitter", "0"]);
        if let Some(d) = devices {
            c.args(["--devices", d]);
        }
        run(&mut c);
        weights(&out.join("model.sld"))
    };
    let one = full(&dir.join("one"), None);
    for (devices, ranks) in [("cpu,cpu", 2), ("cpu,cpu,cpu", 3)] {
        let got = full(&dir.join(format!("ranks{ranks}")), Some(devices));
        let worst = worst_relative(&one, &got);
        assert!(
            worst < 1e-4,
            "full, {ranks} ranks: weights differ by {worst} relative"
        );
    }

    let backbone = |out: &Path, devices: Option<&str>| {
        let mut c = train_backbone([(&s, &lm), (&s2, &lm2)], out);
        if let Some(d) = devices {
            c.args(["--devices", d]);
        }
        run(&mut c);
        weights(&out.join("backbone.safetensors"))
    };
    let one = backbone(&dir.join("bb-one"), None);
    let two = backbone(&dir.join("bb-two"), Some("cpu,cpu"));
    let worst = worst_relative(&one, &two);
    assert!(
        worst < 1e-4,
        "backbone, 2 ranks: weights differ by {worst} relative"
    );

    // A GPU named twice is refused before anything is written.
    let out = dir.join("twice");
    let o = train(&s, &lm, &out, 1, "cpu", false)
        .args(["--devices", "cuda:0,0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// Ranks as processes (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`,
/// as torchrun sets them), their gradients summed over TCP: two processes
/// give the bits two in-process ranks (`--devices cpu,cpu`) give, which
/// the test above ties to one rank. Only rank 0 writes OUT. A resumed run
/// whose rank 1 has no checkpoint (another machine's empty OUT) gets rank
/// 0's state and ends where an uninterrupted run ends. A rank started with
/// other options is refused on both ranks; `--devices` with WORLD_SIZE is
/// refused.
#[test]
fn processes_as_ranks_give_the_in_process_ranks_bits_and_only_rank_0_writes() {
    let dir = std::env::temp_dir().join(format!("sld-procs-{}", std::process::id()));
    let (s, lm) = scene(&dir.join("a"), "room-a");
    let local = |out: &Path, epochs: u32, resume: bool| {
        let mut c = train(&s, &lm, out, epochs, "cpu", resume);
        run(c.args(["--jitter", "0", "--devices", "cpu,cpu"]));
        weights(&out.join("model.sld"))
    };
    // Both ranks' commands; `outs[r]` is rank r's OUT, `extra[r]` its own flags.
    let ranks = |outs: [&Path; 2], epochs: u32, resume: bool, extra: [&[&str]; 2]| {
        let port = free_port();
        let children: Vec<_> = (0..2)
            .map(|r| {
                let mut c = train(&s, &lm, outs[r], epochs, "cpu", resume);
                c.args(["--jitter", "0"])
                    .args(extra[r])
                    .env("RANK", r.to_string())
                    .env("WORLD_SIZE", "2")
                    .env("MASTER_ADDR", "127.0.0.1")
                    .env("MASTER_PORT", &port)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().unwrap();
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .collect::<Vec<_>>()
    };

    // Same OUT on both ranks, as torchrun starts them on one machine.
    let out = dir.join("procs");
    let got = ranks([&out, &out], 3, false, [&[], &[]]);
    assert!(got.iter().all(|(ok, _)| *ok), "{got:?}");
    assert!(got[1].1.contains("rank 1 of 2 done"), "{}", got[1].1);
    let want = local(&dir.join("local"), 3, false);
    let procs = weights(&out.join("model.sld"));
    assert_eq!(want.keys().collect::<Vec<_>>(), procs.keys().collect::<Vec<_>>());
    for (n, w) in &want {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(w) == bits(&procs[n]), "{n}: processes and threads differ");
    }
    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        3,
        "one metrics line per epoch, rank 0's only"
    );

    // Resume to 5 epochs; rank 1's OUT is elsewhere and stays unwritten.
    let elsewhere = dir.join("rank1-machine");
    let got = ranks([&out, &elsewhere], 5, true, [&[], &[]]);
    assert!(got.iter().all(|(ok, _)| *ok), "{got:?}");
    assert!(!elsewhere.exists(), "rank 1 wrote its OUT");
    let want = local(&dir.join("local"), 5, true);
    let worst = worst_relative(&want, &weights(&out.join("model.sld")));
    assert!(worst < 1e-6, "resumed processes differ by {worst} relative");
    // Not a test that cannot fail: 3 epochs of training moved the weights.
    assert!(worst_relative(&want, &procs) > 1e-3);

    // Another learning rate on rank 1: refused on both ranks, nothing trained.
    let bad = dir.join("bad");
    let got = ranks([&bad, &bad], 1, false, [&[], &["--lr", "0.0123"]]);
    for (r, (ok, err)) in got.iter().enumerate() {
        assert!(!ok && err.contains("other training options"), "rank {r}: {err}");
    }
    assert!(!bad.join("model.sld").exists());

    // Backbone mode (two scenes, the backbone's and each head's optimiser
    // synchronised): processes give the in-process ranks' bits too.
    let (s2, lm2) = scene(&dir.join("b"), "room-b");
    let backbone = |out: &Path, env: Option<(usize, &str)>| {
        let mut c = train_backbone([(&s, &lm), (&s2, &lm2)], out);
        c.args(["--device", "cpu"]);
        match env {
            None => {
                c.args(["--devices", "cpu,cpu"]);
            }
            Some((r, port)) => {
                c.env("RANK", r.to_string())
                    .env("WORLD_SIZE", "2")
                    .env("MASTER_ADDR", "localhost")
                    .env("MASTER_PORT", port);
            }
        }
        c
    };
    let port = free_port();
    let bb = dir.join("bb-procs");
    let kids: Vec<_> = (0..2)
        .map(|r| {
            let mut c = backbone(&bb, Some((r, &port)));
            c.stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    run(&mut backbone(&dir.join("bb-threads"), None));
    let (a, b) = (
        weights(&bb.join("backbone.safetensors")),
        weights(&dir.join("bb-threads/backbone.safetensors")),
    );
    assert!(a == b, "backbone: processes and threads differ");

    let o = train(&s, &lm, &dir.join("both"), 1, "cpu", false)
        .args(["--devices", "cpu,cpu"])
        .env("RANK", "0")
        .env("WORLD_SIZE", "2")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not --devices"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
