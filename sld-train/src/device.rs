//! Which compute device Candle trains on: the CPU, or an NVIDIA GPU when
//! `sld` is built with the `cuda` feature (`--device cpu|cuda[:N]`).
//!
//! Only where training runs changes: every parameter, optimiser state and
//! batch is created on the chosen device, checkpoints and exports are read
//! back to the host as little-endian `f32`, so a model trained on a GPU
//! loads and localises in sld-core exactly as one trained on the CPU.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use candle_core::Device;

use crate::train::world::World;

/// A device as the user names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first GPU when `sld` was built with `cuda` and one answers,
    /// else the CPU.
    #[default]
    Auto,
    /// The CPU (Candle's CPU backend, all cores).
    Cpu,
    /// The CUDA GPU with this ordinal (0 = the first, as `nvidia-smi`
    /// numbers them under `CUDA_VISIBLE_DEVICES`).
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    /// Parses `auto`, `cpu`, `cuda` (= `cuda:0`), `cuda:N` or `N` (= `cuda:N`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map(Self::Cuda)
                .map_err(|_| format!("GPU number '{s}' is too large")),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device '{s}': give cpu, cuda (the first GPU), cuda:N (or N) or auto"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether this build can train on a GPU (the `cuda` feature).
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// Opens the device `choice` names. `Auto` falls back to the CPU quietly;
/// an explicit `cuda` that cannot be had is an error saying why (a build
/// without the `cuda` feature, no driver, no such GPU).
pub fn open(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if CUDA_BUILT {
            cuda(0).unwrap_or(Device::Cpu)
        } else {
            Device::Cpu
        }),
        DeviceChoice::Cuda(n) => {
            if !CUDA_BUILT {
                bail!(
                    "--device {choice}: this sld was built without CUDA; rebuild with \
                     `cargo build --release -p sld-train --features cuda` (README, \"Training on a GPU\")"
                );
            }
            cuda(n).map_err(|e| anyhow::anyhow!("--device {choice}: {e}"))
        }
    }
}

/// CUDA device `n`. The driver library is looked up when first used; where
/// it is missing, that lookup panics inside cudarc, so the call is guarded
/// (with the panic message silenced) and the panic becomes this error.
fn cuda(n: usize) -> Result<Device> {
    match crate::util::panic::quietly(|| Device::new_cuda(n)) {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => bail!("no CUDA GPU {n} ({e})"),
        Err(msg) => {
            // cudarc's message lists every file name it tried: keep its
            // first clause.
            let first = msg.split(" - ").next().unwrap_or_default();
            bail!(
                "no usable NVIDIA driver ({first}); install the driver, or add the folder \
                 of libcuda.so.1 to LD_LIBRARY_PATH"
            )
        }
    }
}

/// The devices of a run: `devices` (data-parallel ranks, rank 0 first)
/// when given, else `device` alone. CUDA ordinals may not repeat; the CPU
/// may (ranks on the CPU check the data-parallel code, they add no speed).
///
/// In a multi-process run (`world`) each process is one rank on one
/// device: `--devices` is refused, and `auto` means GPU `LOCAL_RANK` when
/// this build has CUDA and that GPU answers, else the CPU.
pub fn open_all(
    device: DeviceChoice,
    devices: &[DeviceChoice],
    world: Option<&World>,
) -> Result<Vec<Device>> {
    if let Some(w) = world {
        if !devices.is_empty() {
            bail!(
                "WORLD_SIZE={} is set, so this process is one rank (RANK={}): give it --device, not --devices",
                w.size,
                w.rank
            );
        }
        if device == DeviceChoice::Auto {
            let local = if CUDA_BUILT { cuda(w.local_rank).ok() } else { None };
            return Ok(vec![local.unwrap_or(Device::Cpu)]);
        }
    }
    if devices.is_empty() {
        return Ok(vec![open(device)?]);
    }
    for (i, d) in devices.iter().enumerate() {
        if matches!(d, DeviceChoice::Cuda(_)) && devices[..i].contains(d) {
            bail!("--devices names {d} twice (one rank per GPU)");
        }
        if *d == DeviceChoice::Auto {
            bail!("--devices takes cpu, cuda:N or N, not auto");
        }
    }
    devices.iter().map(|&d| open(d)).collect()
}

/// The progress line saying where this process trains: `training on
/// cpu`, `training on cuda:0, cuda:1` (ranks of this process), or `rank 1
/// of 4, training on cuda:1 (rank 0 writes the output)`.
pub fn placement(devices: &[Device], world: Option<&World>) -> String {
    let names: Vec<String> = devices.iter().map(describe).collect();
    match world {
        None => format!("training on {}", names.join(", ")),
        Some(w) => format!(
            "rank {} of {}, training on {}{}",
            w.rank,
            w.size,
            names.join(", "),
            if w.writes() {
                ""
            } else {
                " (rank 0 writes the output)"
            }
        ),
    }
}

/// A device's name for progress lines: `cpu` or `cuda:N`.
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (s, d) in [
            ("cpu", DeviceChoice::Cpu),
            ("auto", DeviceChoice::Auto),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
            ("2", DeviceChoice::Cuda(2)),
        ] {
            assert_eq!(s.parse::<DeviceChoice>(), Ok(d));
        }
        assert_eq!(
            DeviceChoice::Cuda(2).to_string().parse(),
            Ok(DeviceChoice::Cuda(2))
        );
        for bad in ["", "cuda:", "cuda:-1", "cuda:x", "tpu", "CPU"] {
            let e = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(e.contains("give cpu, cuda"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_cpu_opens_and_auto_falls_back_to_it_without_cuda() {
        assert!(open(DeviceChoice::Cpu).unwrap().is_cpu());
        assert_eq!(describe(&open(DeviceChoice::Cpu).unwrap()), "cpu");
        if !CUDA_BUILT {
            assert!(open(DeviceChoice::Auto).unwrap().is_cpu());
            let e = open(DeviceChoice::Cuda(0)).unwrap_err().to_string();
            assert!(
                e.contains("built without CUDA") && e.contains("--features cuda"),
                "{e}"
            );
        }
    }
}
