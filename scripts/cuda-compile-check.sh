#!/usr/bin/env bash
# Compiles sld-train with `--features cuda` on a machine without a GPU or
# driver (CI), NCCL included. A CUDA 13 toolkit comes from PyPI wheels into
# target/cuda-toolkit (nvcc, headers, cccl; ~650 MB download, once):
# CUDA 12's wheels ship no nvcc, and Debian's archive has no toolkit that
# targets sm_90. Then `cargo check`: every crate type-checked with the
# cuda feature, and Candle's CUDA kernels compiled to PTX for
# CUDA_COMPUTE_CAP (default 90) by candle-kernels' build script. Nothing
# links against the driver: cudarc loads it at run time
# (vendor/README.md).
#
# Usage: scripts/cuda-compile-check.sh [cargo check args...]
#        scripts/cuda-compile-check.sh --toolkit-only   (the download alone:
#        CI starts it in the background while it compiles other things)
set -euo pipefail
cd "$(dirname "$0")/.."
V=target/cuda-toolkit
[ -x "$V/bin/pip" ] || python3 -m venv "$V"
"$V/bin/pip" install --quiet --disable-pip-version-check \
  "cuda-toolkit[nvcc,cudart,cccl,cublas,curand,nvrtc]==13.4.3"
[ "${1:-}" = --toolkit-only ] && exit 0
CR=$(ls -d "$V"/lib/python3*/site-packages/nvidia/cu13)
export PATH="$PWD/$CR/bin:$PATH" CUDA_HOME="$PWD/$CR"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90} CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
nvcc --version | tail -1
cargo check -p sld-train --features cuda,nccl --all-targets "$@"
