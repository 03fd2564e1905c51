//! Crash-safe training: `sld train` is SIGKILLed at chosen and random
//! moments (filling the head's feature buffer, mid-epoch, half-way through
//! writing a checkpoint), restarted with `--resume` each time, and must
//! end with exactly the weights and optimiser state of an uninterrupted
//! run with the same seed (bit for bit on CPU), with one metrics line per
//! epoch. After every kill the last checkpoint, if any, must load.
//!
//! The moments come from `sld_train::faults`: with `SLD_TRACE_PHASES` the
//! process reports each phase on stderr and with `SLD_PAUSE_PHASE` it
//! sleeps there, so the kill lands inside that phase.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sld_core::rng::SplitMix64;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sld-crash-{name}-{}", std::process::id()))
}

fn sld() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sld"))
}

fn ok(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 24-image 96×64 scene with 12 landmarks; returns (scene, landmarks file).
fn scene(dir: &Path) -> (PathBuf, PathBuf) {
    super::common::small_scene(dir, "scene", 24, 12, 2)
}

/// Every tensor of a safetensors file, by name (metadata ignored: it holds
/// the output path and date).
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st =
        safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.data().to_vec()))
        .collect()
}

/// `(epoch, loss)` of each line of metrics.jsonl.
fn metrics(dir: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["epoch"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
        })
        .collect()
}

/// Checks that whatever a killed run left is usable: the checkpoint (if
/// any) parses and names its epoch; the exported model (if any) loads.
fn assert_usable(out: &Path) -> bool {
    let ck = out.join("checkpoint.safetensors");
    let model = out.join("model.sld");
    if model.exists() {
        let b = std::fs::read(&model).unwrap();
        assert!(
            sld_core::model::Model::load(b.as_slice()).is_ok(),
            "model.sld does not load after a kill"
        );
    }
    if !ck.exists() {
        return false;
    }
    let b = std::fs::read(&ck).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&b).expect("checkpoint parses after a kill");
    let epoch: usize = meta.metadata().as_ref().unwrap()["epoch"].parse().unwrap();
    assert!(epoch >= 1);
    assert!(!tensors(&ck).is_empty());
    true
}

/// Starts `sld train ARGS --out OUT [--resume]` reporting its phases on
/// stderr (piped) and pausing 400 ms in each occurrence of `phase`.
fn spawn_pausing(args: &[String], out: &Path, resume: bool, phase: &str) -> std::process::Child {
    let mut c = sld();
    c.args(args).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    c.env("SLD_TRACE_PHASES", "1")
        .env("SLD_PAUSE_PHASE", phase)
        .env("SLD_PAUSE_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `sld train ARGS --out OUT` and SIGKILLs it inside the `nth`
/// occurrence of `phase`. Returns false if the run finished first.
fn run_and_kill(args: &[String], out: &Path, resume: bool, phase: &str, nth: usize) -> bool {
    let mut child = spawn_pausing(args, out, resume, phase);
    let marker = format!("sld-phase: {phase}");
    let mut seen = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        if line.unwrap() == marker {
            seen += 1;
            if seen == nth {
                child.kill().unwrap(); // SIGKILL, while it sleeps in the phase
                child.wait().unwrap();
                return true;
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "run ended with {status} before the kill");
    false
}

/// Kills a run at each `(phase, nth)` in turn, resuming after each, then
/// lets it finish; compares with an uninterrupted run.
fn kill_and_resume(name: &str, args: Vec<String>, kills: &[(&str, usize)]) {
    let dir = tmp(name);
    let reference = dir.join("reference");
    ok(sld().args(&args).arg("--out").arg(&reference));
    let out = dir.join("killed");
    let mut resume = false;
    for &(phase, nth) in kills {
        let killed = run_and_kill(&args, &out, resume, phase, nth);
        assert!(killed, "{name}: the run finished before {phase} #{nth}");
        resume = assert_usable(&out);
    }
    let mut c = sld();
    c.args(&args).arg("--out").arg(&out);
    if resume {
        c.arg("--resume");
    }
    ok(&mut c);
    assert_eq!(
        tensors(&out.join("checkpoint.safetensors")),
        tensors(&reference.join("checkpoint.safetensors")),
        "{name}: weights or optimiser state differ from the uninterrupted run"
    );
    assert_eq!(
        tensors(&out.join("model.sld")),
        tensors(&reference.join("model.sld")),
        "{name}: exported model differs"
    );
    assert_eq!(
        metrics(&out),
        metrics(&reference),
        "{name}: metrics.jsonl differs"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn common(scene: &Path, landmarks: &Path, epochs: usize) -> Vec<String> {
    [
        "--scene",
        &scene.display().to_string(),
        "--landmarks",
        &landmarks.display().to_string(),
        "--input-width",
        "96",
        "--input-height",
        "64",
        "--head-channels",
        "16",
        "--epochs",
        &epochs.to_string(),
        "--batch",
        "4",
        "--seed",
        "3",
        "--validate-every",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn full_training_survives_sigkill_mid_epoch_and_mid_checkpoint() {
    let dir = tmp("full-scene");
    let (s, lm) = scene(&dir);
    let mut args: Vec<String> = ["train", "full", "--arch", "small", "--width", "8"]
        .map(String::from)
        .to_vec();
    args.extend(common(&s, &lm, 4));
    // 19 training images / batch 4 = 5 steps per epoch. Random moments
    // from a fixed seed (printed on failure through the names).
    let mut rng = SplitMix64::new(0x5eed_c4a5);
    let step_a = 1 + rng.below(5); // first epoch
    let step_b = 1 + rng.below(10); // in the resumed run (epochs 2-4)
    kill_and_resume(
        "full",
        args,
        &[
            ("step", step_a),
            ("checkpoint", 2),
            ("step", step_b),
            ("checkpoint", 1),
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn head_training_survives_sigkill_while_filling_the_buffer() {
    use sld_train::net::builder::GraphBuilder;
    use sld_train::net::lite0::efficientnet_lite0_s8;
    let dir = tmp("head-scene");
    let (s, lm) = scene(&dir);
    let mut b = GraphBuilder::new(3, 64, 96, 77);
    efficientnet_lite0_s8(&mut b);
    let (_, t) = b.finish(&[], 8, "bb");
    let bb = dir.join("backbone.safetensors");
    sld_train::imagenet::write_weights(&bb, &t, "test").unwrap();
    let mut args: Vec<String> = ["train", "head", "--copies", "2", "--backbone"]
        .map(String::from)
        .to_vec();
    args.push(bb.display().to_string());
    args.extend(common(&s, &lm, 3));
    let mut rng = SplitMix64::new(0x00b0_ffe2);
    let fill_a = 1 + rng.below(30); // ≥ 15 images × 2 copies
    let fill_b = 1 + rng.below(30);
    // Killed while filling; then in epoch 2 (a checkpoint exists); then
    // while a resumed run refills its buffer; then while it writes its
    // first checkpoint.
    kill_and_resume(
        "head",
        args,
        &[
            ("buffer", fill_a),
            ("step", 12),
            ("buffer", fill_b),
            ("checkpoint", 1),
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Ctrl-C (SIGINT) stops `sld train` with exit status 130 and says where
/// to continue, so `sld train … && sld eval …` does not go on. Then
/// `--resume` without a checkpoint (the run was stopped in its first
/// epoch) starts fresh and says so, and `--resume` on a finished run exits
/// 0 with "already complete", rewriting nothing.
#[test]
fn ctrl_c_exits_130_and_resume_starts_fresh_or_reports_complete() {
    let dir = tmp("sigint");
    let (s, lm) = scene(&dir);
    let mut args: Vec<String> = ["train", "full", "--arch", "small", "--width", "8"]
        .map(String::from)
        .to_vec();
    args.extend(common(&s, &lm, 2));
    let out = dir.join("run");
    let mut child = spawn_pausing(&args, &out, false, "step");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap() == "sld-phase: step" {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "stderr: {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted") && l.contains("--resume")),
        "no hint where to continue: {rest:?}"
    );
    assert!(!out.join("checkpoint.safetensors").exists());

    let fresh = sld()
        .args(&args)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&fresh.stderr);
    assert!(fresh.status.success(), "{err}");
    assert!(err.contains("starting fresh"), "{err}");
    assert_eq!(metrics(&out).len(), 2);

    let before = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let again = sld()
        .args(&args)
        .arg("--out")
        .arg(&out)
        .arg("--resume")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("already complete"), "{err}");
    assert_eq!(std::fs::read(out.join("checkpoint.safetensors")).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}
