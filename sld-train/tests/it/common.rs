//! Helpers several test modules share: the `sld` command, a small
//! synthetic scene, and a safetensors file's tensors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `sld` binary of this build.
pub fn sld() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sld"))
}

/// Runs `c`, failing the test with its stderr when it fails.
pub fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A one-session 96×64 scene of `images` images at `dir/name` (`dir` is
/// emptied first) with `landmarks` landmarks: (scene, landmarks file).
pub fn small_scene(dir: &Path, name: &str, images: usize, landmarks: usize, seed: u64) -> (PathBuf, PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
    let s = dir.join(name);
    run(sld()
        .args(["synth", "--images", &images.to_string(), "--sessions", "1"])
        .args([
            "--width",
            "96",
            "--height",
            "64",
            "--seed",
            &seed.to_string(),
            "--out",
        ])
        .arg(&s));
    run(sld()
        .args([
            "landmarks",
            "--count",
            &landmarks.to_string(),
            "--min-track",
            "3",
            "--scene",
        ])
        .arg(&s));
    let lm = s.join(format!("landmarks/landmarks-{landmarks}.txt"));
    (s, lm)
}

/// Every `f32` tensor of a safetensors buffer (a `.sld` file too), by name.
pub fn f32_tensors(bytes: &[u8]) -> BTreeMap<String, Vec<f32>> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| {
            let d = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (n, d)
        })
        .collect()
}
