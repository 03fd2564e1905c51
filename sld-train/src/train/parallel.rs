//! Data-parallel training steps: `--devices A,B,…` runs one rank per
//! device, each with its own copy of every optimiser. A batch of `B`
//! images is split into contiguous shards, one per rank; each rank computes
//! its shard's loss and gradients on its device; the gradients, weighted
//! by each shard's share of the batch, are summed over the ranks
//! ([`AllReduce`]); every rank then applies the same AdamW update, so the
//! copies stay equal and rank 0's is the one exported and checkpointed.
//! The result is the full batch's gradient, as one rank would compute it,
//! to float rounding (a test checks N ranks against one).

use anyhow::{anyhow, Result};
use candle_core::{Device, Tensor, Var};
use sld_core::rng::SplitMix64;

use super::adamw::AdamW;
use super::allreduce::{AllReduce, LocalGroup};

/// The optimiser variables of one rank, as [`super::loss::batch_loss`] takes them.
pub type Vars = [(String, Var, Tensor, Tensor)];

/// The ranks beyond the first: their optimisers (in the order of rank
/// 0's, which the training mode holds itself) and every rank's all-reduce
/// handle.
pub struct Peers {
    /// Ranks 1.., each with its copies of the mode's optimisers.
    pub ranks: Vec<Vec<AdamW>>,
    /// All-reduce handles, rank 0 first.
    pub comms: Vec<Box<dyn AllReduce>>,
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
        Ok(Some(Self { ranks, comms }))
    }

    /// Ranks, the first included.
    pub fn world_size(&self) -> usize {
        self.ranks.len() + 1
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
    let shard = |r: usize| &idx[r * idx.len() / n..(r + 1) * idx.len() / n];
    // Each rank's augmentation stream, drawn in rank order.
    let seeds: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let total = idx.len() as f64;
    let Peers { ranks, comms } = peers;
    let (comm0, comm_rest) = comms.split_first_mut().ok_or_else(|| anyhow!("no ranks"))?;
    let loss = &loss;
    let results: Vec<Result<f64>> = std::thread::scope(|s| {
        let mut joins = Vec::with_capacity(n - 1);
        for (r, (opts, comm)) in ranks.iter_mut().zip(comm_rest.iter_mut()).enumerate() {
            let (r, seed, sh) = (r + 1, seeds[r + 1], shard(r + 1));
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
        let first = rank_step(rank0, comm0.as_mut(), shard(0), total, seeds[0], loss);
        let mut all = vec![first];
        all.extend(
            joins
                .into_iter()
                .map(|j| j.join().unwrap_or_else(|_| Err(anyhow!("a rank panicked")))),
        );
        all
    });
    let mut lv = 0.0;
    for r in results {
        lv += r?;
    }
    Ok(lv)
}

/// One rank's part: its shard's loss and gradients, weighted by the
/// shard's share of the batch, summed over the ranks, then applied.
/// Returns the weighted shard loss.
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
    comm.sum(&mut flat)?;
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
