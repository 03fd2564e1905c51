//! Data-parallel training steps: `--devices A,B,…` runs one rank per
//! device, each with its own copy of every optimiser. A batch of `B`
//! images is split into contiguous shards, one per rank; each rank computes
//! its shard's loss and gradients on its device; the gradients, weighted
//! by each shard's share of the batch, are summed over the ranks
//! ([`AllReduce`]); every rank then applies the same AdamW update, so the
//! copies stay equal and rank 0's is the one exported and checkpointed.
//! The result is the full batch's gradient, as one rank would compute it,
//! to float rounding (a test checks N ranks against one).
//!
//! The ranks may also be processes, on one machine or several
//! ([`World`], as `torchrun` describes them): each process then holds one
//! rank, [`Peers::join`] connects it to the others, and
//! [`Peers::sync_from_rank0`] gives every rank rank 0's starting state
//! (fresh or resumed), so only rank 0 reads and writes `OUT`.

use anyhow::{anyhow, Result};
use candle_core::{Device, Tensor, Var};
use sld_core::rng::SplitMix64;

use super::adamw::AdamW;
use super::allreduce::{AllReduce, LocalGroup};
use super::tcp_group::TcpGroup;
use super::world::World;

/// How long ranks wait for each other to start (rank 0 for the others,
/// the others for rank 0).
pub const RENDEZVOUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The optimiser variables of one rank, as [`super::loss::batch_loss`] takes them.
pub type Vars = [(String, Var, Tensor, Tensor)];

/// The ranks of this process beyond its first: their optimisers (in the
/// order of the first's, which the training mode holds itself) and every
/// local rank's all-reduce handle.
pub struct Peers {
    /// This process's ranks after its first, each with its copies of the
    /// mode's optimisers (none when each process holds one rank).
    pub ranks: Vec<Vec<AdamW>>,
    /// All-reduce handles of this process's ranks, its first rank first.
    pub comms: Vec<Box<dyn AllReduce>>,
    /// The global rank of this process's first rank.
    pub first: usize,
    /// Ranks in the whole run, over every process.
    pub world: usize,
}

impl Peers {
    /// Copies of `opts` (rank 0's) onto each device of `devices[1..]`, with
    /// an in-process all-reduce group. `None` for a single device.
    pub fn new(opts: &[&AdamW], devices: &[Device]) -> Result<Option<Self>> {
        if devices.len() < 2 {
            return Ok(None);
        }
        let ranks = devices[1..]
            .iter()
            .map(|d| opts.iter().map(|o| copy_to(o, d)).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        let comms = group(devices)?;
        Ok(Some(Self {
            ranks,
            comms,
            first: 0,
            world: devices.len(),
        }))
    }

    /// Joins the multi-process run `world` as its rank `world.rank`,
    /// training on `device`: over NCCL when every rank is a CUDA GPU (and
    /// the `nccl` feature is built), else over TCP ([`TcpGroup`]). Every
    /// rank passes the same `fingerprint` of its options and data, or the
    /// group is refused. `log` prints the waiting lines.
    pub fn join(world: &World, device: &Device, fingerprint: u64, log: bool) -> Result<Self> {
        #[allow(unused_mut)]
        let mut tcp = TcpGroup::join(world, fingerprint, RENDEZVOUS_TIMEOUT, log)?;
        #[cfg(feature = "nccl")]
        let comm: Box<dyn AllReduce> = {
            let mut gpus = [f32::from(u8::from(device.is_cuda()))];
            tcp.sum(&mut gpus)?;
            if gpus[0] as usize == world.size {
                Box::new(super::allreduce::NcclRank::join(&mut tcp, device)?)
            } else {
                Box::new(tcp)
            }
        };
        #[cfg(not(feature = "nccl"))]
        let comm: Box<dyn AllReduce> = {
            let _ = device;
            Box::new(tcp)
        };
        Ok(Self {
            ranks: Vec::new(),
            comms: vec![comm],
            first: world.rank,
            world: world.size,
        })
    }

    /// Ranks in the whole run, every process's.
    pub fn world_size(&self) -> usize {
        self.world
    }

    /// True for the process holding rank 0, which writes the output.
    pub fn writes(&self) -> bool {
        self.first == 0
    }

    /// Gives every process rank 0's `opts` (variables, moments, step
    /// counts) and `epoch`: rank 0's may come from a checkpoint the others
    /// cannot read. Every process calls it once, before the first step.
    /// (A sum in which the other ranks add zeros: every bit of rank 0's
    /// state arrives unchanged, integers as 16-bit pieces.)
    pub fn sync_from_rank0(&mut self, opts: &mut [&mut AdamW], epoch: &mut usize) -> Result<()> {
        let mine = self.first == 0;
        let mut flat: Vec<f32> = Vec::new();
        for o in opts.iter() {
            for (_, v, m, s) in &o.vars {
                for t in [v.as_tensor(), m, s] {
                    if mine {
                        flat.extend(t.flatten_all()?.to_vec1::<f32>()?);
                    } else {
                        flat.extend(std::iter::repeat_n(0.0, t.elem_count()));
                    }
                }
            }
        }
        let ints: Vec<u64> = opts.iter().map(|o| o.step).chain([*epoch as u64]).collect();
        for i in &ints {
            let i = if mine { *i } else { 0 };
            flat.extend((0..4).map(|k| ((i >> (16 * k)) & 0xffff) as f32));
        }
        let comm = self.comms.first_mut().ok_or_else(|| anyhow!("no ranks"))?;
        comm.sum(&mut flat)?;
        let mut at = 0;
        let mut take = |t: &Tensor| -> Result<Tensor> {
            let n = t.elem_count();
            let r = Tensor::from_slice(&flat[at..at + n], t.dims(), t.device())?;
            at += n;
            Ok(r)
        };
        for o in opts.iter_mut() {
            for (_, v, m, s) in &mut o.vars {
                v.set(&take(v.as_tensor())?)?;
                *m = take(m)?;
                *s = take(s)?;
            }
        }
        let ints: Vec<u64> = flat[at..]
            .chunks_exact(4)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u64, |a, (k, &v)| a | ((v as u64) << (16 * k)))
            })
            .collect();
        for (o, &st) in opts.iter_mut().zip(&ints) {
            o.step = st;
        }
        *epoch = ints.last().copied().unwrap_or(0) as usize;
        Ok(())
    }

    /// Sets every peer optimiser's learning rate (the mode sets rank 0's).
    pub fn set_lr(&mut self, lr: f64) {
        self.ranks.iter_mut().flatten().for_each(|o| o.params.lr = lr);
    }
}

/// The all-reduce handles for `devices`: NCCL when they are all CUDA GPUs
/// and the `nccl` feature is built, else the in-process group.
fn group(devices: &[Device]) -> Result<Vec<Box<dyn AllReduce>>> {
    #[cfg(feature = "nccl")]
    if devices.iter().all(Device::is_cuda) {
        return Ok(super::allreduce::NcclRank::group(devices)?
            .into_iter()
            .map(|g| Box::new(g) as Box<dyn AllReduce>)
            .collect());
    }
    Ok(LocalGroup::new(devices.len())
        .into_iter()
        .map(|g| Box::new(g) as Box<dyn AllReduce>)
        .collect())
}

/// `o`'s variables and moments copied onto `device` (same step and
/// hyper-parameters). A real copy: on the same device `to_device` would
/// share the storage, and `Var::set` writes into it in place.
fn copy_to(o: &AdamW, device: &Device) -> Result<AdamW> {
    let vars = o
        .vars
        .iter()
        .map(|(n, v, m, s)| {
            Ok((
                n.clone(),
                Var::from_tensor(&v.as_tensor().to_device(device)?.copy()?)?,
                m.to_device(device)?.copy()?,
                s.to_device(device)?.copy()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(AdamW {
        vars,
        step: o.step,
        params: o.params,
    })
}

/// One optimiser step over `idx`, split across the ranks. `rank0` are the
/// optimisers this step updates on rank 0, `pick` selects the same ones
/// from a peer's list; `loss(vars, shard, rng)` is a shard's mean loss.
/// Returns the batch's mean loss.
pub fn step<L>(
    rank0: &mut [&mut AdamW],
    peers: &mut Peers,
    pick: &[usize],
    idx: &[usize],
    rng: &mut SplitMix64,
    loss: L,
) -> Result<f64>
where
    L: Fn(&[&Vars], &[usize], &mut SplitMix64) -> Result<(Tensor, f64)> + Sync,
{
    let n = peers.world_size();
    let first = peers.first;
    // Global rank `r`'s shard.
    let shard = |r: usize| &idx[r * idx.len() / n..(r + 1) * idx.len() / n];
    // Each rank's augmentation stream, drawn in rank order.
    let seeds: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let total = idx.len() as f64;
    let Peers { ranks, comms, .. } = peers;
    let (comm0, comm_rest) = comms.split_first_mut().ok_or_else(|| anyhow!("no ranks"))?;
    let loss = &loss;
    let results: Vec<Result<f64>> = std::thread::scope(|s| {
        let mut joins = Vec::with_capacity(n - 1);
        for (r, (opts, comm)) in ranks.iter_mut().zip(comm_rest.iter_mut()).enumerate() {
            let r = first + r + 1;
            let (seed, sh) = (seeds[r], shard(r));
            joins.push(s.spawn(move || {
                let mut mine: Vec<&mut AdamW> = opts
                    .iter_mut()
                    .enumerate()
                    .filter(|(k, _)| pick.contains(k))
                    .map(|(_, o)| o)
                    .collect();
                rank_step(&mut mine, comm.as_mut(), sh, total, seed, loss)
                    .map_err(|e| e.context(format!("rank {r}")))
            }));
        }
        let mine = rank_step(rank0, comm0.as_mut(), shard(first), total, seeds[first], loss);
        let mut all = vec![mine];
        all.extend(
            joins
                .into_iter()
                .map(|j| j.join().unwrap_or_else(|_| Err(anyhow!("a rank panicked")))),
        );
        all
    });
    // Every rank returns the batch loss (it is part of the sum).
    let mut lv = 0.0;
    for (k, r) in results.into_iter().enumerate() {
        let v = r?;
        if k == 0 {
            lv = v;
        }
    }
    Ok(lv)
}

/// One rank's part: its shard's loss and gradients, weighted by the
/// shard's share of the batch, summed over the ranks, then applied.
/// Returns the batch loss (the weighted shard losses, summed with the
/// gradients).
fn rank_step<L>(
    opts: &mut [&mut AdamW],
    comm: &mut dyn AllReduce,
    shard: &[usize],
    total: f64,
    seed: u64,
    loss: &L,
) -> Result<f64>
where
    L: Fn(&[&Vars], &[usize], &mut SplitMix64) -> Result<(Tensor, f64)> + Sync,
{
    let w = shard.len() as f64 / total;
    let tensors: Vec<&Var> = opts
        .iter()
        .flat_map(|o| o.vars.iter().map(|(_, v, _, _)| v))
        .collect();
    // Gradients, flattened, then one flag per variable (1 = has one): an
    // empty shard computes nothing but still takes part in the sum.
    let mut flat: Vec<f32> = Vec::new();
    let mut grads = None;
    let mut lv = 0.0;
    if !shard.is_empty() {
        let vars: Vec<&Vars> = opts.iter().map(|o| o.vars.as_slice()).collect();
        let (l, v) = loss(&vars, shard, &mut SplitMix64::new(seed))?;
        lv = v * w;
        grads = Some(l.backward()?);
    }
    let mut has = Vec::with_capacity(tensors.len());
    for v in &tensors {
        match grads.as_ref().and_then(|g| g.get(v.as_tensor())) {
            Some(g) => {
                flat.extend((g.flatten_all()?.to_dtype(candle_core::DType::F32)? * w)?.to_vec1::<f32>()?);
                has.push(1.0);
            }
            None => {
                flat.extend(std::iter::repeat_n(0.0, v.elem_count()));
                has.push(0.0);
            }
        }
    }
    flat.extend(&has);
    flat.push(lv as f32);
    comm.sum(&mut flat)?;
    let lv = f64::from(flat.pop().unwrap_or(0.0));
    // Rebuild a gradient store: rank 0's, or (empty shard) a fresh one
    // from a zero loss, with the summed gradients.
    let mut store = match grads {
        Some(g) => g,
        None => Tensor::zeros(
            (),
            candle_core::DType::F32,
            tensors.first().map_or(&Device::Cpu, |v| v.device()),
        )?
        .backward()?,
    };
    let mut at = 0;
    let flags = flat.split_off(flat.len() - tensors.len());
    for (v, flag) in tensors.iter().zip(flags) {
        let t = v.as_tensor();
        let g = Tensor::from_slice(&flat[at..at + t.elem_count()], t.dims(), t.device())?;
        at += t.elem_count();
        if flag > 0.0 {
            store.insert(t, g);
        } else {
            store.remove(t);
        }
    }
    for o in opts.iter_mut() {
        o.apply(&store)?;
    }
    Ok(lv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::adamw::AdamWParams;

    /// A least-squares loss over samples `x_i · w ≈ y_i`, mean over the shard.
    fn lsq(vars: &[&Vars], shard: &[usize], xs: &[[f32; 3]], ys: &[f32]) -> Result<(Tensor, f64)> {
        let w = vars[0][0].1.as_tensor();
        let x: Vec<f32> = shard.iter().flat_map(|&i| xs[i]).collect();
        let y: Vec<f32> = shard.iter().map(|&i| ys[i]).collect();
        let x = Tensor::from_vec(x, (shard.len(), 3), w.device())?;
        let y = Tensor::from_vec(y, (shard.len(), 1), w.device())?;
        let l = (x.matmul(&w.reshape((3, 1))?)? - y)?.sqr()?.sum_all()?;
        let l = (l / shard.len() as f64)?;
        let v = l.to_scalar::<f32>()? as f64;
        Ok((l, v))
    }

    #[test]
    fn ranks_sum_to_the_whole_batch_gradient() {
        let xs: Vec<[f32; 3]> = (0..7)
            .map(|i| [i as f32, 1.0 - 0.3 * i as f32, (i * i) as f32 * 0.1])
            .collect();
        let ys: Vec<f32> = (0..7).map(|i| (i as f32).sin()).collect();
        let fresh = || {
            let v = Var::from_vec(vec![0.1f32, -0.2, 0.3], 3, &Device::Cpu).unwrap();
            AdamW::new(vec![("w".into(), v)], AdamWParams::default()).unwrap()
        };
        let idx: Vec<usize> = (0..7).collect();
        let mut one = fresh();
        for _ in 0..5 {
            let vars = [one.vars.as_slice()];
            let (l, _) = lsq(&vars, &idx, &xs, &ys).unwrap();
            one.backward_step(&l).unwrap();
        }
        for n in 2..=4 {
            let mut r0 = fresh();
            let mut peers = Peers::new(&[&r0], &vec![Device::Cpu; n]).unwrap().unwrap();
            let mut rng = SplitMix64::new(1);
            for _ in 0..5 {
                step(&mut [&mut r0], &mut peers, &[0], &idx, &mut rng, |v, s, _| {
                    lsq(v, s, &xs, &ys)
                })
                .unwrap();
            }
            let a = one.vars[0].1.as_tensor().to_vec1::<f32>().unwrap();
            let b = r0.vars[0].1.as_tensor().to_vec1::<f32>().unwrap();
            for (p, q) in a.iter().zip(&b) {
                assert!((p - q).abs() < 1e-6, "{n} ranks: {a:?} against {b:?}");
            }
        }
    }
}
