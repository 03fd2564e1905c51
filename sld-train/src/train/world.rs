//! Where this process sits in a data-parallel run of several processes,
//! on one machine or several: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
//! `MASTER_ADDR` and `MASTER_PORT`, the variables `torchrun` (and Slurm
//! wrappers written for it) set for every process it starts.
//!
//! Every process runs the same `sld train` command; process `RANK` trains
//! shard `RANK` of each batch on its own device, gradients are summed over
//! all processes ([`super::tcp_group`], or NCCL between GPUs), and only
//! rank 0 writes `OUT`.

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// One process's place in a multi-process run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    /// This process's rank, `0..size`; rank 0 writes the output.
    pub rank: usize,
    /// Processes in the run.
    pub size: usize,
    /// This process's index on its machine (`LOCAL_RANK`, default 0):
    /// `--device auto` trains on GPU `local_rank`.
    pub local_rank: usize,
    /// Rank 0's host (name or address) as the other ranks reach it.
    pub master_addr: String,
    /// The TCP port rank 0 listens on for the others.
    pub master_port: u16,
}

impl World {
    /// The run described by this process's environment; `None` when
    /// `WORLD_SIZE` is unset or 1 (a single process).
    pub fn from_env() -> Result<Option<World>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`World::from_env`] over any variable lookup.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<World>> {
        let num = |k: &str| -> Result<Option<usize>> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .with_context(|| format!("{k}={v:?} is not a whole number"))
                })
                .transpose()
        };
        let size = match num("WORLD_SIZE")? {
            None | Some(1) => return Ok(None),
            Some(0) => bail!("WORLD_SIZE=0: a run has at least one process"),
            Some(n) => n,
        };
        let rank = num("RANK")?.context("WORLD_SIZE is set but RANK is not (set both, as torchrun does)")?;
        if rank >= size {
            bail!("RANK={rank} is not below WORLD_SIZE={size}");
        }
        let master_addr = var("MASTER_ADDR")
            .filter(|a| !a.trim().is_empty())
            .context("WORLD_SIZE is set but MASTER_ADDR is not (rank 0's host name or address)")?;
        let port = var("MASTER_PORT").context("WORLD_SIZE is set but MASTER_PORT is not")?;
        let master_port = port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .with_context(|| format!("MASTER_PORT={port:?} is not a TCP port (1-65535)"))?;
        Ok(Some(World {
            rank,
            size,
            local_rank: num("LOCAL_RANK")?.unwrap_or(0),
            master_addr: master_addr.trim().to_string(),
            master_port,
        }))
    }

    /// True for the rank that writes the output (rank 0).
    pub fn writes(&self) -> bool {
        self.rank == 0
    }
}

/// A 64-bit FNV-1a digest of `what`'s JSON: the ranks of a run compare
/// digests of everything that decides their shards and their arithmetic
/// (options, sample counts, parameter shapes) before the first step, so a
/// rank started with other options is refused instead of silently
/// training on the wrong shards.
pub fn fingerprint(what: &impl Serialize) -> Result<u64> {
    Ok(fnv1a(&serde_json::to_vec(what)?))
}

/// The [`fingerprint`] of a training run: `o` (paths reduced to their
/// file names, since each machine may keep the data elsewhere) with
/// `what` (sample counts, parameter shapes, digests of frozen weights).
pub fn run_fingerprint(o: &super::options::TrainOptions, what: &impl Serialize) -> Result<u64> {
    let mut o = o.clone();
    fn name(p: &std::path::Path) -> std::path::PathBuf {
        p.file_name().map(std::path::PathBuf::from).unwrap_or_default()
    }
    o.landmarks = name(&o.landmarks);
    o.backbone = o.backbone.as_deref().map(name);
    fingerprint(&(o, what))
}

/// A digest of `values`' bits (for weights every rank reads from its own
/// copy of a file).
pub fn digest(values: &[f32]) -> u64 {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    fnv1a(&bytes)
}

/// The 64-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn torchrun_variables_make_a_world() {
        let w = World::from_vars(env(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            w,
            World {
                rank: 3,
                size: 4,
                local_rank: 1,
                master_addr: "node0".into(),
                master_port: 29500
            }
        );
        assert!(!w.writes());
        assert_eq!(World::from_vars(env(&[])).unwrap(), None);
        assert_eq!(World::from_vars(env(&[("WORLD_SIZE", "1")])).unwrap(), None);
    }

    #[test]
    fn a_half_set_environment_is_an_error_naming_the_variable() {
        let base = [
            ("WORLD_SIZE", "2"),
            ("RANK", "1"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ];
        for (drop, want) in [
            ("RANK", "RANK"),
            ("MASTER_ADDR", "MASTER_ADDR"),
            ("MASTER_PORT", "MASTER_PORT"),
        ] {
            let kept: Vec<_> = base.iter().copied().filter(|(k, _)| *k != drop).collect();
            let e = World::from_vars(env(&kept)).unwrap_err().to_string();
            assert!(e.contains(want), "{drop}: {e}");
        }
        for (k, v, want) in [
            ("RANK", "2", "not below WORLD_SIZE"),
            ("MASTER_PORT", "70000", "not a TCP port"),
            ("MASTER_PORT", "0", "not a TCP port"),
            ("RANK", "one", "not a whole number"),
            ("WORLD_SIZE", "0", "at least one"),
        ] {
            let mut vars: Vec<_> = base.iter().copied().filter(|(n, _)| *n != k).collect();
            vars.push((k, v));
            let e = World::from_vars(env(&vars)).unwrap_err().to_string();
            assert!(e.contains(want), "{k}={v}: {e}");
        }
    }

    #[test]
    fn fingerprints_tell_options_apart() {
        let a = fingerprint(&("x", 1, [2.0f32, 3.0])).unwrap();
        assert_eq!(a, fingerprint(&("x", 1, [2.0f32, 3.0])).unwrap());
        assert_ne!(a, fingerprint(&("x", 2, [2.0f32, 3.0])).unwrap());
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
