//! With the `cuda` feature only: links the CUDA runtime statically.
//!
//! Candle's kernels crate links `cudart` as a shared library, so a `cuda`
//! build of `sld` would not start where the CUDA toolkit is not installed.
//! The static runtime (`libcudart_static.a`, in every toolkit) opens the
//! driver itself when a GPU is first used, and cudarc loads its libraries
//! at run time too (vendor/README.md): the binary starts, and trains on the
//! CPU, on a machine without CUDA. This script offers the linker a
//! `libcudart.a` (a link to `libcudart_static.a`) in a search directory of
//! its own, found from `CUDA_HOME`, `CUDA_PATH`, `CUDA_ROOT` or `nvcc`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    println!("cargo:rerun-if-env-changed=CUDA_PATH");
    println!("cargo:rerun-if-env-changed=CUDA_ROOT");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let mut roots: Vec<PathBuf> = ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    if let Ok(out) = std::process::Command::new("sh")
        .args(["-c", "command -v nvcc"])
        .output()
    {
        let nvcc = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if let Some(root) = nvcc.parent().and_then(|b| b.parent()) {
            roots.push(root.to_path_buf());
        }
    }
    roots.push("/usr/local/cuda".into());
    let found = roots
        .iter()
        .flat_map(|r| {
            [
                "lib64",
                "lib",
                "lib/x64",
                "targets/x86_64-linux/lib",
                "targets/sbsa-linux/lib",
            ]
            .map(|d| r.join(d))
        })
        .map(|d| d.join("libcudart_static.a"))
        .find(|p| p.is_file());
    let Some(lib) = found else {
        println!(
            "cargo:warning=libcudart_static.a not found under CUDA_HOME/CUDA_PATH/nvcc's toolkit: \
             the binary will need libcudart.so at run time"
        );
        return;
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let link = out.join("libcudart.a");
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::fs::copy(&lib, &link) {
        println!("cargo:warning=cannot copy {}: {e}", lib.display());
        return;
    }
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-search=native={}", out.display());
    // What the static runtime needs from the system.
    for l in ["dl", "rt", "pthread"] {
        println!("cargo:rustc-link-lib=dylib={l}");
    }
}
