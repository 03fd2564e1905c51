//! Summing gradients over the ranks of a data-parallel run: the
//! [`AllReduce`] trait; [`LocalGroup`], its in-process implementation (one
//! thread per rank, host memory), which serves ranks on the CPU (the
//! tests) and any mix of devices; and, with the `nccl` feature, `NcclRank`
//! for ranks that are all CUDA GPUs of this machine (NCCL through cudarc,
//! Candle's `nccl` feature).
//!
//! Across processes and machines ([`super::world::World`]: `RANK`,
//! `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT` as `torchrun` sets them) the
//! trait is served by [`super::tcp_group::TcpGroup`], or, when every rank
//! is a CUDA GPU, by `NcclRank::join`: an NCCL communicator made with
//! `ncclCommInitRank`, rank 0 creating NCCL's unique id and the TCP group
//! handing it to the others.

use std::sync::{Arc, Barrier, Mutex};

use anyhow::{bail, ensure, Result};

/// One rank's handle on a group that sums buffers element-wise.
pub trait AllReduce: Send {
    /// This rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn world_size(&self) -> usize;
    /// Replaces `data`, on every rank, by the element-wise sum over all
    /// ranks' `data` (same length everywhere). Every rank must call it,
    /// the same number of times; it returns when all have.
    fn sum(&mut self, data: &mut [f32]) -> Result<()>;
}

struct Shared {
    barrier: Barrier,
    slots: Vec<Mutex<Vec<f32>>>,
    failed: Mutex<Option<String>>,
}

/// A rank of an in-process group ([`LocalGroup::new`]).
pub struct LocalGroup {
    rank: usize,
    shared: Arc<Shared>,
}

impl LocalGroup {
    /// The `world` handles of a new group, rank order; give each to its
    /// own thread.
    pub fn new(world: usize) -> Vec<LocalGroup> {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(world.max(1)),
            slots: (0..world.max(1)).map(|_| Mutex::new(Vec::new())).collect(),
            failed: Mutex::new(None),
        });
        (0..world.max(1))
            .map(|rank| LocalGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }
}

impl AllReduce for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.slots.len()
    }

    /// Each rank posts its buffer, then every rank adds all the buffers in
    /// rank order, so every rank gets the same bits whatever the threads'
    /// timing.
    fn sum(&mut self, data: &mut [f32]) -> Result<()> {
        let s = &*self.shared;
        {
            let mut mine = s.slots[self.rank].lock().unwrap_or_else(|p| p.into_inner());
            mine.clear();
            mine.extend_from_slice(data);
        }
        s.barrier.wait();
        let mut bad = None;
        for (r, slot) in s.slots.iter().enumerate() {
            let other = slot.lock().unwrap_or_else(|p| p.into_inner());
            if other.len() != data.len() {
                bad = Some(format!(
                    "all-reduce: rank {r} gave {} values, rank {} gave {}",
                    other.len(),
                    self.rank,
                    data.len()
                ));
                break;
            }
            if r == 0 {
                data.copy_from_slice(&other);
            } else {
                data.iter_mut().zip(other.iter()).for_each(|(d, o)| *d += o);
            }
        }
        if let Some(b) = bad {
            *s.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(b);
        }
        // Nobody refills a slot before every rank has read them all.
        s.barrier.wait();
        if let Some(b) = s.failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            bail!(b);
        }
        ensure!(
            data.iter().all(|v| v.is_finite()),
            "all-reduce: a summed gradient is not finite"
        );
        Ok(())
    }
}

/// A rank of an NCCL group over the CUDA devices of this process
/// (`ncclCommInitAll`; the `nccl` feature). Each call stages `data` on
/// the rank's GPU, sums it there with NCCL's ring all-reduce (every rank
/// receives the same bits) and copies it back.
#[cfg(feature = "nccl")]
pub struct NcclRank {
    comm: candle_core::cuda_backend::cudarc::nccl::Comm,
}

// SAFETY: NCCL allows a communicator to be used from any thread as long as
// no two threads use it at once; a rank's handle is moved to its own
// thread for a step and used by that thread alone (`parallel::step`).
#[cfg(feature = "nccl")]
unsafe impl Send for NcclRank {}

#[cfg(feature = "nccl")]
impl NcclRank {
    /// One rank per device of `devices` (all CUDA, distinct), rank order.
    pub fn group(devices: &[candle_core::Device]) -> Result<Vec<NcclRank>> {
        let streams = devices
            .iter()
            .map(|d| Ok(d.as_cuda_device()?.cuda_stream()))
            .collect::<Result<Vec<_>>>()?;
        let comms = nccl(|| candle_core::cuda_backend::cudarc::nccl::Comm::from_devices(streams))?
            .map_err(|e| anyhow::anyhow!("NCCL: cannot create the communicators ({e:?})"))?;
        Ok(comms.into_iter().map(|comm| NcclRank { comm }).collect())
    }
}

#[cfg(feature = "nccl")]
impl NcclRank {
    /// This process's rank of an NCCL group spanning processes (and
    /// machines): rank 0 makes NCCL's unique id, `tcp` hands it to every
    /// rank, and each joins with its GPU `device`. Blocks until all have.
    pub fn join(tcp: &mut super::tcp_group::TcpGroup, device: &candle_core::Device) -> Result<NcclRank> {
        use candle_core::cuda_backend::cudarc::nccl::{Comm, Id};
        let mut bytes = Vec::new();
        if tcp.rank() == 0 {
            let id = nccl(Id::new)?.map_err(|e| anyhow::anyhow!("NCCL: cannot make a unique id ({e:?})"))?;
            bytes = id.internal().iter().map(|&c| c as u8).collect();
        }
        tcp.share(&mut bytes)?;
        let mut raw: [core::ffi::c_char; 128] = [0; 128];
        ensure!(
            bytes.len() == raw.len(),
            "NCCL: rank 0 sent a {}-byte id",
            bytes.len()
        );
        raw.iter_mut()
            .zip(&bytes)
            .for_each(|(r, &b)| *r = b as core::ffi::c_char);
        let stream = device.as_cuda_device()?.cuda_stream();
        let (rank, size) = (tcp.rank(), tcp.world_size());
        let comm = nccl(|| Comm::from_rank(stream, rank, size, Id::uninit(raw)))?
            .map_err(|e| anyhow::anyhow!("NCCL: cannot join the group ({e:?})"))?;
        Ok(NcclRank { comm })
    }
}

/// Runs an NCCL call that loads the library first: cudarc panics where
/// `libnccl.so.2` cannot be loaded, and that becomes an error saying so.
#[cfg(feature = "nccl")]
fn nccl<T>(f: impl FnOnce() -> T) -> Result<T> {
    crate::util::panic::quietly(f).map_err(|msg| {
        let first = msg.split(" - ").next().unwrap_or_default().to_string();
        anyhow::anyhow!(
            "NCCL could not be loaded ({first}); install NCCL (libnccl.so.2) or add its folder \
             to LD_LIBRARY_PATH, or train these ranks without the `nccl` feature (over TCP)"
        )
    })
}

#[cfg(feature = "nccl")]
impl AllReduce for NcclRank {
    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    fn sum(&mut self, data: &mut [f32]) -> Result<()> {
        use candle_core::cuda_backend::cudarc::nccl::ReduceOp;
        let stream = self.comm.stream();
        let mut buf = stream
            .clone_htod(data)
            .map_err(|e| anyhow::anyhow!("NCCL: staging on the GPU ({e:?})"))?;
        self.comm
            .all_reduce_in_place(&mut buf, &ReduceOp::Sum)
            .map_err(|e| anyhow::anyhow!("NCCL all-reduce ({e:?})"))?;
        stream
            .memcpy_dtoh(&buf, data)
            .map_err(|e| anyhow::anyhow!("NCCL: copying the sum back ({e:?})"))?;
        ensure!(
            data.iter().all(|v| v.is_finite()),
            "all-reduce: a summed gradient is not finite"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_gets_the_same_sum_in_rank_order() {
        for world in 1..=4 {
            let handles = LocalGroup::new(world);
            let results: Vec<Vec<f32>> = std::thread::scope(|s| {
                let joins: Vec<_> = handles
                    .into_iter()
                    .map(|mut h| {
                        s.spawn(move || {
                            let r = h.rank() as f32;
                            // Two rounds: the slots are reused safely.
                            let mut a = vec![r, 1.0, 1e8, -1e8 * (r + 1.0)];
                            h.sum(&mut a).unwrap();
                            let mut b = vec![0.1 * r; 3];
                            h.sum(&mut b).unwrap();
                            a.extend(b);
                            a
                        })
                    })
                    .collect();
                joins.into_iter().map(|j| j.join().unwrap()).collect()
            });
            let n = world as f32;
            let mut want = vec![(0..world).map(|r| r as f32).sum::<f32>(), n, 1e8 * n, 0.0];
            // Rank order, as the sum runs it.
            want[3] = (0..world).fold(0f32, |acc, r| acc + -1e8 * (r as f32 + 1.0));
            let b = (0..world).fold(0f32, |acc, r| acc + 0.1 * r as f32);
            want.extend([b; 3]);
            for got in &results {
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn unequal_lengths_are_an_error_on_every_rank() {
        let handles = LocalGroup::new(2);
        let errs: Vec<String> = std::thread::scope(|s| {
            let joins: Vec<_> = handles
                .into_iter()
                .map(|mut h| {
                    s.spawn(move || {
                        let mut v = vec![1.0; 2 + h.rank()];
                        h.sum(&mut v).unwrap_err().to_string()
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        });
        assert!(errs.iter().all(|e| e.contains("all-reduce: rank")), "{errs:?}");
    }
}
