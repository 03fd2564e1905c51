//! Builds `tests/no-std-check` (a `#![no_std]` staticlib with its own panic
//! handler and allocator) for the host and, where the target is installed,
//! for `thumbv7em-none-eabihf`. A std dependency anywhere in sld-core's
//! graph breaks both builds.

use std::path::PathBuf;
use std::process::Command;

fn build(target: Option<&str>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = root.join("tests/no-std-check/Cargo.toml");
    let target_dir = root.join("target/no-std-check");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer test build's flags (e.g. coverage) must not leak in.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let out = cmd.output().expect("run cargo");
    assert!(
        out.status.success(),
        "no_std build for {target:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn target_installed(target: &str) -> bool {
    let out = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output();
    out.is_ok_and(|o| o.status.success() && PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).exists())
}

/// The `alloc` feature off too: decoding, PnP and images without a heap.
#[test]
fn sld_core_checks_without_std_and_without_alloc() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--quiet", "--no-default-features", "--manifest-path"])
        .arg(root.join("sld-core/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/no-std-check"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "sld-core without std and alloc failed to build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sld_core_links_without_std_on_the_host() {
    build(None);
}

#[test]
fn sld_core_builds_for_bare_metal_thumbv7em() {
    let target = "thumbv7em-none-eabihf";
    if !target_installed(target) {
        // CI installs the target (.ci/run); locally: rustup target add thumbv7em-none-eabihf
        assert!(
            std::env::var_os("CI").is_none(),
            "{target} must be installed in CI"
        );
        eprintln!("skipping: {target} not installed (rustup target add {target})");
        return;
    }
    build(Some(target));
}
