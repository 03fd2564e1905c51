//! Times the gradient sum of data-parallel ranks: the in-process group
//! (`--devices`) and the TCP group (ranks as processes; here threads on
//! one machine over the loopback, so the network is the loopback's), for
//! gradient buffers of 0.3, 1 and 4.5 million values:
//! `cargo run --release -p sld-train --example allreduce_timing [RANKS]`.
//! Median of 9 sums after one warm-up, milliseconds per sum.

use std::time::{Duration, Instant};

use sld_train::train::allreduce::{AllReduce, LocalGroup};
use sld_train::train::tcp_group::TcpGroup;
use sld_train::train::world::World;

/// Median seconds per `sum` of `n` values over the ranks `handles`.
fn time<G: AllReduce + 'static>(handles: Vec<G>, n: usize) -> f64 {
    let joins: Vec<_> = handles
        .into_iter()
        .map(|mut h| {
            std::thread::spawn(move || {
                let mut v = vec![h.rank() as f32 * 1e-3; n];
                let mut t = Vec::new();
                for _ in 0..10 {
                    let t0 = Instant::now();
                    h.sum(&mut v).expect("sum");
                    t.push(t0.elapsed().as_secs_f64());
                    v.iter_mut().for_each(|x| *x *= 1e-3);
                }
                t.remove(0);
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
        })
        .collect();
    joins
        .into_iter()
        .map(|j| j.join().expect("rank"))
        .fold(0.0, f64::max)
}

fn main() -> anyhow::Result<()> {
    let ranks: usize = std::env::args().nth(1).map_or(Ok(2), |a| a.parse())?;
    println!("| values (MB) | ranks | in-process ms | TCP ms | TCP GB/s at rank 0 |");
    println!("|---|---|---|---|---|");
    for n in [300_000usize, 1_000_000, 4_500_000] {
        let local = time(LocalGroup::new(ranks), n);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let joins: Vec<_> = (0..ranks)
            .map(|rank| {
                std::thread::spawn(move || {
                    let w = World {
                        rank,
                        size: ranks,
                        local_rank: rank,
                        master_addr: "127.0.0.1".into(),
                        master_port: port,
                    };
                    TcpGroup::join(&w, 0, Duration::from_secs(30), false)
                })
            })
            .collect();
        let groups = joins
            .into_iter()
            .map(|j| j.join().expect("join"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tcp = time(groups, n);
        // Rank 0 receives and sends every other rank's buffer.
        let bytes = 2.0 * (ranks - 1) as f64 * n as f64 * 4.0;
        println!(
            "| {n} ({:.1}) | {ranks} | {:.1} | {:.1} | {:.2} |",
            n as f64 * 4e-6,
            local * 1e3,
            tcp * 1e3,
            bytes / tcp / 1e9
        );
    }
    Ok(())
}
