//! An [`AllReduce`] group of processes, on one machine or several, over
//! TCP: rank 0 listens on `MASTER_PORT`, the other ranks connect to
//! `MASTER_ADDR:MASTER_PORT` ([`World`]) and introduce themselves (rank,
//! world size, and the [`super::world::fingerprint`] of their options and
//! data, which must equal rank 0's). A sum is a star: every rank sends its
//! buffer to rank 0, which adds them in rank order and sends the result
//! back, so every rank gets the same bits, and the same bits as the
//! in-process [`super::allreduce::LocalGroup`] would give.
//!
//! It carries the gradients of CPU ranks (and of any mix of devices) and,
//! between GPUs, only NCCL's unique id ([`TcpGroup::share`]). Wire format:
//! little-endian integers and `f32`s; every reply starts with a status
//! byte (0 ok, 1 an error message follows), so an error on rank 0 reaches
//! every rank, and a rank that exits closes its connection, which the
//! others report instead of waiting for it.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::allreduce::AllReduce;
use super::world::World;

/// The first bytes a rank sends: protocol name and version.
const HELLO: &[u8; 8] = b"SLDGRP01";

/// Values per read or write chunk (64 KiB).
const CHUNK: usize = 16 * 1024;

/// One rank's connections: rank 0 holds one per other rank (rank order),
/// every other rank one to rank 0.
pub struct TcpGroup {
    rank: usize,
    size: usize,
    links: Vec<Link>,
}

struct Link {
    /// The other end's rank.
    rank: usize,
    r: BufReader<TcpStream>,
    w: BufWriter<TcpStream>,
}

impl Link {
    fn new(rank: usize, s: TcpStream) -> Result<Self> {
        s.set_nodelay(true)?;
        Ok(Link {
            rank,
            r: BufReader::with_capacity(CHUNK * 4, s.try_clone()?),
            w: BufWriter::with_capacity(CHUNK * 4, s),
        })
    }

    fn set_timeout(&self, t: Option<Duration>) -> Result<()> {
        Ok(self.r.get_ref().set_read_timeout(t)?)
    }

    /// A status byte 0, then `body`.
    fn send_ok(
        &mut self,
        body: impl FnOnce(&mut BufWriter<TcpStream>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.w.write_all(&[0])?;
        body(&mut self.w)?;
        self.w.flush()
    }

    /// A status byte 1 and `msg`; failures are ignored (the rank may be gone).
    fn send_err(&mut self, msg: &str) {
        let _ = self
            .w
            .write_all(&[1])
            .and_then(|_| write_bytes(&mut self.w, msg.as_bytes()))
            .and_then(|_| self.w.flush());
    }

    /// Reads a status byte; an error message becomes the error.
    fn recv_status(&mut self) -> Result<()> {
        let mut b = [0u8];
        self.r.read_exact(&mut b).map_err(|e| self.lost(e))?;
        if b[0] == 0 {
            return Ok(());
        }
        let msg = read_bytes(&mut self.r, 1 << 16).map_err(|e| self.lost(e))?;
        bail!("{}", String::from_utf8_lossy(&msg))
    }

    /// The error for a connection that failed while reading or writing.
    fn lost(&self, e: std::io::Error) -> anyhow::Error {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => anyhow!(
                "rank {} closed its connection (it stopped: see its own output)",
                self.rank
            ),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                anyhow!("rank {} did not answer in time", self.rank)
            }
            _ => anyhow!("connection to rank {}: {e}", self.rank),
        }
    }
}

impl TcpGroup {
    /// Joins the group of `world`: rank 0 waits for every other rank to
    /// connect, the others connect to rank 0; each waits at most `timeout`.
    /// Every rank must pass the same `fingerprint` (a rank that does not is
    /// refused, and so is the whole group). `log` prints one line while
    /// waiting.
    pub fn join(world: &World, fingerprint: u64, timeout: Duration, log: bool) -> Result<Self> {
        ensure!(
            world.size >= 1 && world.rank < world.size,
            "rank {} of {}",
            world.rank,
            world.size
        );
        let links = if world.rank == 0 {
            accept_all(world, fingerprint, timeout, log)?
        } else {
            vec![connect(world, fingerprint, timeout, log)?]
        };
        Ok(TcpGroup {
            rank: world.rank,
            size: world.size,
            links,
        })
    }

    /// Gives every rank rank 0's `bytes` (at most 64 KiB); on other ranks
    /// `bytes` is replaced.
    pub fn share(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        if self.rank == 0 {
            for l in &mut self.links {
                l.send_ok(|w| write_bytes(w, bytes)).map_err(|e| l.lost(e))?;
            }
        } else {
            let l = &mut self.links[0];
            l.recv_status()?;
            *bytes = read_bytes(&mut l.r, 1 << 16).map_err(|e| l.lost(e))?;
        }
        Ok(())
    }

    /// Rank 0's part of a sum: adds every rank's buffer to `data` in rank
    /// order and sends the result back.
    fn sum_root(&mut self, data: &mut [f32]) -> Result<()> {
        let mut buf = vec![0u8; CHUNK * 4];
        let mut failed = None;
        for l in &mut self.links {
            let n = match read_u64(&mut l.r) {
                Ok(n) => n,
                Err(e) => {
                    failed = Some(l.lost(e));
                    break;
                }
            };
            if n != data.len() as u64 {
                failed = Some(anyhow!(
                    "all-reduce: rank {} gave {n} values, rank 0 gave {}",
                    l.rank,
                    data.len()
                ));
                break;
            }
            let added = data.chunks_mut(CHUNK).try_for_each(|chunk| {
                let bytes = &mut buf[..chunk.len() * 4];
                l.r.read_exact(bytes)?;
                for (d, b) in chunk.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d += f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                Ok::<_, std::io::Error>(())
            });
            if let Err(e) = added {
                failed = Some(l.lost(e));
                break;
            }
        }
        if let Some(e) = failed {
            let msg = format!("{e:#}");
            self.links.iter_mut().for_each(|l| l.send_err(&msg));
            return Err(e);
        }
        for l in &mut self.links {
            l.send_ok(|w| write_f32s(w, data, &mut buf))
                .map_err(|e| l.lost(e))?;
        }
        Ok(())
    }

    /// Another rank's part: sends `data`, receives the sum into it.
    fn sum_leaf(&mut self, data: &mut [f32]) -> Result<()> {
        let mut buf = vec![0u8; CHUNK * 4];
        let l = &mut self.links[0];
        write_u64(&mut l.w, data.len() as u64)
            .and_then(|_| write_f32s(&mut l.w, data, &mut buf))
            .and_then(|_| l.w.flush())
            .map_err(|e| l.lost(e))?;
        l.recv_status()?;
        data.chunks_mut(CHUNK)
            .try_for_each(|chunk| {
                let bytes = &mut buf[..chunk.len() * 4];
                l.r.read_exact(bytes)?;
                for (d, b) in chunk.iter_mut().zip(bytes.chunks_exact(4)) {
                    *d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                Ok::<_, std::io::Error>(())
            })
            .map_err(|e| l.lost(e))
    }
}

impl AllReduce for TcpGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn sum(&mut self, data: &mut [f32]) -> Result<()> {
        if self.rank == 0 {
            self.sum_root(data)?;
        } else {
            self.sum_leaf(data)?;
        }
        ensure!(
            data.iter().all(|v| v.is_finite()),
            "all-reduce: a summed gradient is not finite"
        );
        Ok(())
    }
}

/// Rank 0: listens on every interface at `MASTER_PORT` until every other
/// rank has said hello, then answers them all (ok, or the first problem).
fn accept_all(world: &World, fingerprint: u64, timeout: Duration, log: bool) -> Result<Vec<Link>> {
    let port = world.master_port;
    let listener = TcpListener::bind(("0.0.0.0", port)).with_context(|| {
        format!("rank 0 cannot listen on TCP port {port} (MASTER_PORT): is another run using it?")
    })?;
    listener.set_nonblocking(true)?;
    if log {
        eprintln!(
            "sld train: rank 0 of {}, waiting for the other ranks on port {port}",
            world.size
        );
    }
    let deadline = Instant::now() + timeout;
    let mut slots: Vec<Option<Link>> = (0..world.size).map(|_| None).collect();
    // Problems are collected while every rank is still let in, so each
    // one hears of them (rather than waiting for a rank 0 that left).
    let mut problem: Option<String> = None;
    let mut joined = 1;
    while joined < world.size {
        let (stream, addr) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<String> = (1..world.size)
                        .filter(|&r| slots[r].is_none())
                        .map(|r| r.to_string())
                        .collect();
                    problem.get_or_insert(format!(
                        "rank 0 waited {} s and ranks {} never connected (are they started, \
                         with MASTER_ADDR naming this machine?)",
                        timeout.as_secs(),
                        missing.join(", ")
                    ));
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(e).context("rank 0: accepting a connection"),
        };
        stream.set_nonblocking(false)?;
        let mut link = Link::new(usize::MAX, stream)?;
        link.set_timeout(Some(Duration::from_secs(30)))?;
        // A connection that does not speak the protocol is dropped.
        let Ok((rank, size, fp)) = read_hello(&mut link.r) else {
            continue;
        };
        link.rank = rank;
        if size != world.size || rank == 0 || rank >= world.size || slots[rank].is_some() {
            let m = if size != world.size {
                format!(
                    "the rank {rank} at {addr} has WORLD_SIZE={size}, rank 0 has {}",
                    world.size
                )
            } else if slots.get(rank).is_some_and(Option::is_some) {
                format!("two processes say RANK={rank} (the second at {addr})")
            } else {
                format!("a process at {addr} says RANK={rank} (WORLD_SIZE={size})")
            };
            link.send_err(&m);
            problem.get_or_insert(m);
            continue;
        }
        if fp != fingerprint {
            problem.get_or_insert(format!(
                "rank {rank} (at {addr}) was started with other training options, scenes or \
                 backbone than rank 0: every rank must run the same command on the same data"
            ));
        }
        slots[rank] = Some(link);
        joined += 1;
    }
    let mut links: Vec<Link> = slots.into_iter().flatten().collect();
    if let Some(m) = problem {
        links.iter_mut().for_each(|l| l.send_err(&m));
        bail!(m);
    }
    for l in &mut links {
        l.send_ok(|_| Ok(())).map_err(|e| l.lost(e))?;
        l.set_timeout(None)?;
    }
    Ok(links)
}

/// Another rank: connects to rank 0 (retrying until `timeout`: rank 0 may
/// start later), says hello, and waits for rank 0's answer.
fn connect(world: &World, fingerprint: u64, timeout: Duration, log: bool) -> Result<Link> {
    let target = format!("{}:{}", world.master_addr, world.master_port);
    let deadline = Instant::now() + timeout;
    let mut said = false;
    let stream = loop {
        let addrs: Vec<SocketAddr> = target.to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
        if let Some(s) = addrs
            .iter()
            .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).ok())
        {
            break s;
        }
        if Instant::now() >= deadline {
            bail!(
                "rank {}: rank 0 did not answer at {target} (MASTER_ADDR:MASTER_PORT) within {} s",
                world.rank,
                timeout.as_secs()
            );
        }
        if log && !said {
            eprintln!(
                "sld train: rank {} of {}, waiting for rank 0 at {target}",
                world.rank, world.size
            );
            said = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut link = Link::new(0, stream)?;
    let mut hello = HELLO.to_vec();
    hello.extend((world.rank as u64).to_le_bytes());
    hello.extend((world.size as u64).to_le_bytes());
    hello.extend(fingerprint.to_le_bytes());
    link.w
        .write_all(&hello)
        .and_then(|_| link.w.flush())
        .map_err(|e| link.lost(e))?;
    // Rank 0 answers once every rank is in.
    link.set_timeout(Some(timeout + Duration::from_secs(30)))?;
    link.recv_status()
        .with_context(|| format!("rank {}: rank 0 refused the group", world.rank))?;
    link.set_timeout(None)?;
    Ok(link)
}

fn read_hello(r: &mut impl Read) -> std::io::Result<(usize, usize, u64)> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != HELLO {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an sld rank",
        ));
    }
    let rank = read_u64(r)?;
    let size = read_u64(r)?;
    let fp = read_u64(r)?;
    let small = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Ok((small(rank), small(size), fp))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn write_u64(w: &mut impl Write, v: u64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

/// A length, then the bytes.
fn write_bytes(w: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    write_u64(w, b.len() as u64)?;
    w.write_all(b)
}

/// [`write_bytes`]'s counterpart; refuses more than `max` bytes.
fn read_bytes(r: &mut impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let n = read_u64(r)?;
    if n > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message too long",
        ));
    }
    let mut b = vec![0u8; n as usize];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// `data` as little-endian `f32`s, `buf` the staging chunk.
fn write_f32s(w: &mut impl Write, data: &[f32], buf: &mut [u8]) -> std::io::Result<()> {
    for chunk in data.chunks(CHUNK) {
        let bytes = &mut buf[..chunk.len() * 4];
        for (b, v) in bytes.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        w.write_all(bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::allreduce::LocalGroup;

    fn world(rank: usize, size: usize, port: u16) -> World {
        World {
            rank,
            size,
            local_rank: rank,
            master_addr: "127.0.0.1".into(),
            master_port: port,
        }
    }

    /// A port nobody listens on now.
    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Runs `f` on every rank of a `size`-rank group (one thread each),
    /// with per-rank fingerprints `fp(rank)`; results in rank order.
    fn on_ranks<T: Send>(
        size: usize,
        fp: impl Fn(usize) -> u64 + Sync,
        f: impl Fn(Result<TcpGroup>) -> T + Sync,
    ) -> Vec<T> {
        let port = free_port();
        std::thread::scope(|s| {
            let joins: Vec<_> = (0..size)
                .map(|r| {
                    let (f, fp) = (&f, &fp);
                    s.spawn(move || {
                        f(TcpGroup::join(
                            &world(r, size, port),
                            fp(r),
                            Duration::from_secs(20),
                            false,
                        ))
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().unwrap()).collect()
        })
    }

    /// Per-rank buffers with values of very different sizes, so the order
    /// of the additions shows in the bits.
    fn buffer(rank: usize, round: usize, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i * 7 + rank * 13 + round) as f32;
                (x * 0.37).sin()
                    * 10f32.powi((i % 9) as i32 - 4)
                    * if rank.is_multiple_of(2) { 1.0 } else { -1.3 }
            })
            .collect()
    }

    /// Every rank gets the bits the in-process group gives (sum in rank
    /// order), over several rounds and a buffer longer than one chunk.
    #[test]
    fn tcp_ranks_get_the_in_process_groups_bits() {
        for size in 2..=4 {
            let n = CHUNK * 2 + 5;
            let got = on_ranks(
                size,
                |_| 7,
                |g| {
                    let mut g = g.unwrap();
                    (0..3)
                        .map(|round| {
                            let mut v = buffer(g.rank(), round, n);
                            g.sum(&mut v).unwrap();
                            v
                        })
                        .collect::<Vec<_>>()
                },
            );
            let want: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
                let joins: Vec<_> = LocalGroup::new(size)
                    .into_iter()
                    .map(|mut h| {
                        s.spawn(move || {
                            (0..3)
                                .map(|round| {
                                    let mut v = buffer(h.rank(), round, n);
                                    h.sum(&mut v).unwrap();
                                    v
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                joins.into_iter().map(|j| j.join().unwrap()).collect()
            });
            let bits = |v: &Vec<Vec<f32>>| -> Vec<Vec<u32>> {
                v.iter()
                    .map(|r| r.iter().map(|x| x.to_bits()).collect())
                    .collect()
            };
            for (r, g) in got.iter().enumerate() {
                assert!(bits(g) == bits(&want[0]), "{size} ranks: rank {r} differs");
            }
            // And it is a sum: one value checked by hand.
            let direct: f32 = (0..size).fold(0.0, |a, r| a + buffer(r, 2, n)[17]);
            assert_eq!(got[0][2][17], direct);
        }
    }

    #[test]
    fn rank_zero_shares_bytes_with_everyone() {
        let got = on_ranks(
            3,
            |_| 1,
            |g| {
                let mut g = g.unwrap();
                let mut b = if g.rank() == 0 {
                    (0..128u8).collect()
                } else {
                    vec![9]
                };
                g.share(&mut b).unwrap();
                b
            },
        );
        assert!(got.iter().all(|b| *b == (0..128u8).collect::<Vec<_>>()));
    }

    #[test]
    fn a_rank_with_other_options_is_refused_on_every_rank() {
        let errs = on_ranks(
            3,
            |r| if r == 2 { 99 } else { 1 },
            |g| g.err().map(|e| format!("{e:#}")),
        );
        for (r, e) in errs.iter().enumerate() {
            let e = e.as_deref().unwrap_or_else(|| panic!("rank {r} joined"));
            assert!(e.contains("other training options"), "rank {r}: {e}");
        }
    }

    #[test]
    fn unequal_lengths_and_a_vanished_rank_are_errors_not_hangs() {
        let errs = on_ranks(
            3,
            |_| 1,
            |g| {
                let mut g = g.unwrap();
                let mut v = vec![1.0; 4 + usize::from(g.rank() == 2)];
                g.sum(&mut v).unwrap_err().to_string()
            },
        );
        assert!(
            errs.iter().all(|e| e.contains("rank 2 gave 5 values")),
            "{errs:?}"
        );
        // Rank 1 leaves before the first sum: rank 0 and rank 2 say so.
        let errs = on_ranks(
            3,
            |_| 1,
            |g| {
                let mut g = g.unwrap();
                if g.rank() == 1 {
                    return String::new();
                }
                let mut v = vec![1.0; 4];
                g.sum(&mut v).unwrap_err().to_string()
            },
        );
        assert!(errs[0].contains("rank 1 closed its connection"), "{errs:?}");
        assert!(errs[2].contains("rank 1 closed its connection"), "{errs:?}");
    }

    #[test]
    fn a_missing_rank_zero_is_reported_after_the_timeout() {
        let port = free_port();
        let t0 = Instant::now();
        let e = TcpGroup::join(&world(1, 2, port), 1, Duration::from_millis(600), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("rank 0 did not answer at 127.0.0.1"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
}
