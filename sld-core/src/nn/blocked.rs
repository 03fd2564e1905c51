//! Convolutions over channel-blocked (NCHW16c) tensors
//! ([`crate::model::layout`]): 1×1 convolutions that read planar or
//! blocked input and write planar or blocked output, direct (im2col-free)
//! convolutions from blocked input (stride 1 or 2) or planar input (any
//! stride: the image, few channels) to either layout, and depthwise
//! convolutions from blocked to blocked.
//!
//! All vectorise across a block's 16 channels. The 1×1 tile holds PX
//! pixels × OB blocks of output channels in registers (AVX-512 6×4, and
//! 8×3, 12×2, 24×1 for a group's last blocks; AVX2 6×1, aarch64 6×1,
//! portable 4×1): each input channel is one broadcast per pixel against
//! OB weight vectors, in input-channel order, so each output is summed in
//! the same order as the planar GEMM's (`gemm`) and has the same bits.
//! The direct tile is the same product over every tap (AVX-512 4×5 for 80
//! channels, 6×4, 8×3…; AVX2 6×1), k-sliced by one block of input
//! channels × one kernel row, taps outside the input skipped; it sums in
//! another order than the implicit GEMM (within float rounding). The
//! depthwise tile holds PX output pixels of one row (AVX-512 8, else 4)
//! and adds every tap as a whole-vector product; border pixels take the
//! same path with the missing taps skipped.
//!
//! Threads split the output rows (the channel blocks when rows are fewer
//! than threads); every value is computed by the same code as with one
//! thread, so the result is bit-identical.

use core::marker::PhantomData;

use super::gemm::MulAdd;
use super::pool::{Par, MAX_THREADS};
use super::simd::{Array, Columns, Lanes, Region};
use crate::model::layout::{Layout, BLOCK, DIRECT_GROUP};
use crate::model::plan::ConvStep;
use crate::model::{Activation, Shape};

/// One block of channels of one pixel.
type V = [f32; BLOCK];

/// Whether plans should use these kernels on this CPU: on x86-64 with
/// AVX2 + FMA or AVX-512, where they run on explicit vector registers and
/// were measured faster than the planar ones (BENCHMARKS.md). Elsewhere
/// (aarch64, the portable level) the planar kernels stay: the blocked ones
/// are correct there (tested) but not measured.
pub fn preferred() -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        super::cpu::level() != super::cpu::Level::Portable
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        false
    }
}

/// A 1×1 convolution's operands.
#[derive(Clone, Copy)]
#[doc(hidden)] // public for sld-core's own tests (`crate::testing`)
pub struct Pointwise<'a> {
    /// Input, `[ci, n]` in `in_layout`.
    pub x: &'a [f32],
    /// Layout of `x`.
    pub in_layout: Layout,
    /// Packed weights `[⌈co/G⌉, ci, G]`, `G` = `group`.
    pub w: &'a [f32],
    /// Output channels per row of `w`: 64 or 16
    /// ([`crate::model::layout::pointwise_group`]).
    pub group: usize,
    /// Bias `[co]`.
    pub bias: Option<&'a [f32]>,
    /// Residual laid out like the output.
    pub residual: Option<&'a [f32]>,
    /// Layout of the output (and residual).
    pub out_layout: Layout,
    /// Input channels.
    pub ci: usize,
    /// Output channels.
    pub co: usize,
    /// Pixels (`H·W`).
    pub n: usize,
    /// Activation applied last.
    pub activation: Activation,
}

/// A depthwise convolution's operands (blocked in and out).
#[derive(Clone, Copy)]
#[doc(hidden)] // public for sld-core's own tests (`crate::testing`)
pub struct Depthwise<'a> {
    /// Input `[⌈c/16⌉, h, w, 16]`.
    pub x: &'a [f32],
    /// Packed weights `[⌈c/16⌉, kh·kw, 16]`.
    pub w: &'a [f32],
    /// Bias `[c]`.
    pub bias: Option<&'a [f32]>,
    /// The step (kernel, stride, padding, dilation, activation).
    pub st: &'a ConvStep,
    /// `[c, h, w]`.
    pub in_shape: Shape,
    /// `[c, ho, wo]`.
    pub out_shape: Shape,
}

/// An ungrouped convolution's operands (either input layout, either
/// output layout): ONNX Runtime's NCHWc direct convolution. A blocked
/// input takes stride 1 or 2 (the same on both axes); a planar one (the
/// image, few channels) any stride.
#[derive(Clone, Copy)]
#[doc(hidden)] // public for sld-core's own tests (`crate::testing`)
pub struct Direct<'a> {
    /// Input `[⌈ci/16⌉, h, w, 16]` (blocked) or `[ci, h, w]` (planar).
    pub x: &'a [f32],
    /// Layout of the input.
    pub in_layout: Layout,
    /// Packed weights `[⌈co/80⌉, ⌈ci/16⌉, kh·kw, 16, 80]`
    /// ([`DIRECT_GROUP`]).
    pub w: &'a [f32],
    /// Bias `[co]`.
    pub bias: Option<&'a [f32]>,
    /// Residual laid out like the output.
    pub residual: Option<&'a [f32]>,
    /// Layout of the output (and residual).
    pub out_layout: Layout,
    /// The step (kernel, padding, dilation, activation).
    pub st: &'a ConvStep,
    /// `[ci, h, w]`.
    pub in_shape: Shape,
    /// `[co, ho, wo]`.
    pub out_shape: Shape,
}

/// What a tile's epilogue needs.
#[derive(Clone, Copy)]
struct Epi<'a> {
    /// Bias `[co]`.
    bias: Option<&'a [f32]>,
    /// Activation applied last.
    activation: Activation,
    /// Layout of the output (and residual).
    out_layout: Layout,
    /// Output channels.
    co: usize,
    /// Output pixels.
    n: usize,
}

impl Pointwise<'_> {
    fn epi(&self) -> Epi<'_> {
        Epi {
            bias: self.bias,
            activation: self.activation,
            out_layout: self.out_layout,
            co: self.co,
            n: self.n,
        }
    }
}

/// The work of one thread: output blocks `b0..b1` at output pixels
/// `q0..q1` (whole output rows), written through `out`; `residual` is the
/// whole residual, laid out like the output.
pub(super) struct Part<'o> {
    pub(super) b0: usize,
    pub(super) b1: usize,
    pub(super) q0: usize,
    pub(super) q1: usize,
    pub(super) out: Out<'o>,
    pub(super) residual: Option<&'o [f32]>,
    /// This part's own scratch (empty unless the kernel asked for some:
    /// [`split`]).
    pub(super) scratch: &'o mut [f32],
    /// Which of the pixels' rows are this part's ([`Phases::ALL`] unless
    /// [`split_phases`] made it).
    pub(super) phases: Phases,
}

/// Output rows `r` with `r mod d` in `p0..p1`, `row` pixels a row: a
/// share of rows that interleave (a dilated Winograd tile's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Phases {
    pub(super) d: usize,
    pub(super) p0: usize,
    pub(super) p1: usize,
    pub(super) row: usize,
}

impl Phases {
    /// Every row.
    pub(super) const ALL: Phases = Phases {
        d: 1,
        p0: 0,
        p1: 1,
        row: 1,
    };

    /// Whether output row `r` is in the share.
    pub(super) fn has_row(&self, r: usize) -> bool {
        self.d <= 1 || (self.p0..self.p1).contains(&(r % self.d))
    }

    /// Whether pixels `px..=last` lie in rows of the share: all in one row
    /// unless the share is every row.
    fn has(&self, px: usize, last: usize) -> bool {
        self.d <= 1 || (self.row > 0 && px / self.row == last / self.row && self.has_row(px / self.row))
    }
}

/// One part's share of a convolution's output: the values of blocks
/// `b0..b1` at pixels `q0..q1` of a `[co, n]` tensor in `layout`. Every
/// part of one split holds the same pointer (from one `&mut [f32]`
/// borrowed for `'o`); the parts' shares are disjoint, and every access
/// checks its own share and the bounds, so no two threads ever touch the
/// same value.
pub(super) struct Out<'o> {
    ptr: *mut f32,
    len: usize,
    layout: Layout,
    co: usize,
    n: usize,
    b0: usize,
    b1: usize,
    q0: usize,
    q1: usize,
    phases: Phases,
    _out: PhantomData<&'o mut [f32]>,
}

// SAFETY: an `Out` only reaches its own share of the buffer (see `Out`),
// which no other part reads or writes, so sending it to another thread
// is as sound as sending a `&mut` to that share.
#[allow(unsafe_code)]
unsafe impl Send for Out<'_> {}

impl<'o> Part<'o> {
    /// Blocks `b0..b1` at pixels `q0..q1` of `out`, a `[co, n]` tensor in
    /// `layout` that this part alone borrows; no residual, no scratch.
    pub(super) fn of(
        out: &'o mut [f32],
        layout: Layout,
        (co, n): (usize, usize),
        (b0, b1): (usize, usize),
        (q0, q1): (usize, usize),
    ) -> Self {
        Self::share(
            (out.as_mut_ptr(), out.len()),
            layout,
            (co, n),
            (b0, b1),
            (q0, q1),
            Phases::ALL,
            None,
            &mut [],
        )
    }

    /// Blocks `b0..b1` at pixels `q0..q1` (in the rows of `phases`) of
    /// the `len` values at `ptr`, a `[co, n]` tensor in `layout` borrowed
    /// for `'o`. Sound only when no other live part's share overlaps this
    /// one ([`Out`]): [`Part::of`] owns the whole buffer, [`split_with`]
    /// gives each part its own rows or blocks, [`split_phases`] its own
    /// rows modulo the dilation.
    #[allow(clippy::too_many_arguments)]
    fn share(
        (ptr, len): (*mut f32, usize),
        layout: Layout,
        (co, n): (usize, usize),
        (b0, b1): (usize, usize),
        (q0, q1): (usize, usize),
        phases: Phases,
        residual: Option<&'o [f32]>,
        scratch: &'o mut [f32],
    ) -> Self {
        Part {
            b0,
            b1,
            q0,
            q1,
            out: Out {
                ptr,
                len,
                layout,
                co,
                n,
                b0,
                b1,
                q0,
                q1,
                phases,
                _out: PhantomData,
            },
            residual,
            scratch,
            phases,
        }
    }
}

impl Out<'_> {
    fn mine(&self, blk: usize, px: usize) -> bool {
        (self.b0..self.b1).contains(&blk) && (self.q0..self.q1).contains(&px)
    }

    /// Block `blk` at pixels `px..=last`, all this part's: both ends in
    /// its blocks and pixel range, and (where its rows interleave with
    /// another part's) all in one row of its own.
    fn mine_run(&self, blk: usize, px: usize, last: usize) -> bool {
        self.mine(blk, px) && self.mine(blk, last) && self.phases.has(px, last)
    }

    /// Block `blk` at pixels `px..px + count` (blocked layout), `16·count`
    /// values; `None` unless all are in this part's share.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    pub(super) fn run(&mut self, blk: usize, px: usize, count: usize) -> Option<&mut [f32]> {
        // Checked arithmetic: the bound below is what makes the slice sound.
        let at = blk.checked_mul(self.n)?.checked_add(px)?.checked_mul(BLOCK)?;
        let len = count.checked_mul(BLOCK)?;
        if self.layout != Layout::Blocked
            || count == 0
            || !self.mine_run(blk, px, px.checked_add(count - 1)?)
            || at.checked_add(len)? > self.len
        {
            return None;
        }
        // SAFETY: `at..at + len` is inside the buffer (checked) and every
        // pixel of it in this part's share (the share's pixels are a
        // range, both ends were checked, and where its rows interleave
        // with another part's the run is one row of its own: checked),
        // which nothing else touches while `self` is borrowed.
        #[allow(unsafe_code)]
        Some(unsafe { core::slice::from_raw_parts_mut(self.ptr.add(at), len) })
    }

    /// Channels `blk·16 .. blk·16 + lanes` at pixels `px..px + PX`
    /// (planar layout): `lanes` runs of PX values, checked once here;
    /// `None` unless all are in this part's share.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn planar_runs<const PX: usize>(
        &mut self,
        blk: usize,
        px: usize,
        lanes: usize,
    ) -> Option<PlanarRuns<'_, PX>> {
        let ch = blk.checked_mul(BLOCK)?;
        // One past the last run's end (checked arithmetic: the bound
        // below is what makes the pointers sound).
        let last = ch
            .checked_add(lanes.checked_sub(1)?)?
            .checked_mul(self.n)?
            .checked_add(px)?
            .checked_add(PX)?;
        if self.layout != Layout::Planar
            || PX == 0
            || px.checked_add(PX)? > self.n
            || lanes > BLOCK
            || ch + lanes > self.co
            || !self.mine_run(blk, px, px + PX - 1)
            || last > self.len
        {
            return None;
        }
        Some(PlanarRuns {
            // SAFETY: the first run starts at `ch·n + px` < `last` ≤ `len`
            // (checked, PX ≥ 1): inside the buffer. The runs lie `n` ≥
            // `px + PX` apart (checked): no two overlap.
            #[allow(unsafe_code)]
            first: unsafe { self.ptr.add(ch * self.n + px) },
            n: self.n,
            lanes,
            _out: PhantomData,
        })
    }
}

/// [`Out::planar_runs`]: the runs of one block of channels at PX pixels,
/// borrowed from the part's share.
struct PlanarRuns<'a, const PX: usize> {
    first: *mut f32,
    n: usize,
    lanes: usize,
    _out: PhantomData<&'a mut [f32]>,
}

impl<const PX: usize> PlanarRuns<'_, PX> {
    /// Channel `l`'s run (`l` < the block's lanes).
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn get(&mut self, l: usize) -> Option<&mut [f32; PX]> {
        if l >= self.lanes {
            return None;
        }
        // SAFETY: `Out::planar_runs` checked that every run `l` < `lanes`
        // lies inside the buffer and in the part's share (its pixels a
        // range, both ends checked, in one row of its own where rows
        // interleave; its channels in the part's blocks),
        // which nothing else touches while the runs borrow the `Out`
        // mutably; each returned run borrows `self`, so no two live at once.
        #[allow(unsafe_code)]
        Some(unsafe { &mut *self.first.add(l * self.n).cast::<[f32; PX]>() })
    }

    /// Pixels `at..at + m` (m ≤ 8) of every channel's run, for
    /// [`Lanes::store_transposed`]; `None` unless `at + m ≤ PX`.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn columns(&mut self, at: usize, m: usize) -> Option<Columns<'_>> {
        if m > 8 || at.checked_add(m)? > PX {
            return None;
        }
        // SAFETY: runs `l` < `lanes` (≤ 16) lie inside the buffer and in
        // the part's share and do not overlap (`Out::planar_runs`);
        // `at + m ≤ PX` (checked) keeps each piece inside its run, and the
        // pieces borrow `self` mutably, so nothing else touches them.
        #[allow(unsafe_code)]
        Some(unsafe { Columns::new(self.first.add(at), self.n, self.lanes, m) })
    }
}

/// One thread's share of a kernel, written once over [`Lanes`].
pub(super) trait Job: Sync {
    /// Runs part `p` with the vectors `L`.
    fn run<L: Lanes>(&self, p: Part<'_>);
}

/// Runs `job` on part `p` in the CPU's kernel level: a worker thread is
/// outside the interpreter's `#[target_feature]` copy, so it enters one
/// here (else the vectors' intrinsics would be calls).
pub(super) fn at_level<F: MulAdd, J: Job>(job: &J, p: Part<'_>) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        use super::cpu::{level, Level};
        match level() {
            // SAFETY: `level()` is Avx512 only when AVX-512F (+ AVX2/FMA)
            // was detected; the body is safe code.
            #[allow(unsafe_code)]
            Level::Avx512 => return unsafe { on_avx512(job, p) },
            // SAFETY: `level()` is Avx2 only when AVX2 and FMA were detected.
            #[allow(unsafe_code)]
            Level::Avx2 => return unsafe { on_avx2(job, p) },
            // The interpreter runs `run_steps::<Plain>` at this level, so
            // `F` is `Plain` here. Naming it rather than `F` keeps a copy
            // of every kernel over `Array<Fused>`, which x86 never runs,
            // out of the build (a quarter of sld-core's kernel code).
            Level::Portable => return job.run::<Array<super::gemm::Plain>>(p),
        }
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    {
        return job.run::<Array<super::gemm::Fused>>(p);
    }
    #[allow(unreachable_code)]
    job.run::<Array<F>>(p)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx2,fma")]
fn on_avx512<J: Job>(job: &J, p: Part<'_>) {
    job.run::<super::simd::Avx512>(p)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
fn on_avx2<J: Job>(job: &J, p: Part<'_>) {
    job.run::<super::simd::Avx2>(p)
}

/// Splits the output (`blocks` blocks of `co` channels × `rows` rows of
/// `row` pixels, in `layout`) into one [`Part`] per thread and runs `f` on
/// each; false when a buffer is too short. [`split_with`] with `n` =
/// `rows·row` and no scratch. Threads take whole output rows
/// (every block) where each gets at least one, else blocks: a split by
/// rows keeps the work even whatever the channel count (5 blocks of an
/// 80-channel layer do not halve), and each output is computed by the
/// same code whichever part it falls in, so the result is the same bits.
#[allow(clippy::too_many_arguments)]
fn split(
    blocks: usize,
    (rows, row): (usize, usize),
    layout: Layout,
    co: usize,
    out: &mut [f32],
    residual: Option<&[f32]>,
    par: Par<'_>,
    f: &(dyn Fn(Part<'_>) -> bool + Sync),
) -> bool {
    let none: &mut [f32] = &mut [];
    split_with(
        blocks,
        (rows, row, rows * row),
        layout,
        co,
        out,
        residual,
        (none, 0),
        par,
        false,
        f,
    )
}

/// [`split`] over an output of `n` pixels whose last row may be short
/// (`rows·row ≥ n`; a part's pixels end at `n`), each part given its own
/// `per` values of `scratch` (threads are as many as `scratch` holds);
/// with `even`, by blocks where the rows do not share out evenly and the
/// blocks do (every part then has all the rows).
#[allow(clippy::too_many_arguments)]
pub(super) fn split_with(
    blocks: usize,
    (rows, row, n): (usize, usize, usize),
    layout: Layout,
    co: usize,
    out: &mut [f32],
    residual: Option<&[f32]>,
    (scratch, per): (&mut [f32], usize),
    par: Par<'_>,
    even: bool,
    f: &(dyn Fn(Part<'_>) -> bool + Sync),
) -> bool {
    let end = match layout {
        Layout::Blocked => blocks * BLOCK * n,
        Layout::Planar => co * n,
    };
    if out.len() < end || residual.is_some_and(|r| r.len() < end) {
        return false;
    }
    if rows.saturating_mul(row) < n || scratch.len() < per {
        return false;
    }
    let ptr = out.as_mut_ptr();
    let part = |b0: usize, b1: usize, r0: usize, r1: usize, scratch| {
        let (q0, q1) = ((r0 * row).min(n), (r1 * row).min(n));
        Part::share(
            (ptr, end),
            layout,
            (co, n),
            (b0, b1),
            (q0, q1),
            Phases::ALL,
            residual,
            scratch,
        )
    };
    let mut threads = par.threads().clamp(1, MAX_THREADS);
    if let Some(fit) = scratch.len().checked_div(per) {
        threads = threads.min(fit).max(1);
    }
    let mut pieces = scratch.chunks_mut(per.max(1));
    let by_rows = rows >= threads
        && !(even && !rows.is_multiple_of(threads) && rows < 4 * threads && blocks.is_multiple_of(threads));
    let units = if by_rows { rows } else { blocks };
    let threads = threads.min(units).max(1);
    if threads == 1 {
        return f(part(0, blocks, 0, rows, pieces.next().unwrap_or_default()));
    }
    let mut parts: [Option<Part<'_>>; MAX_THREADS] = Default::default();
    for (t, slot) in parts.iter_mut().take(threads).enumerate() {
        // Units `u0..u1`: as even as whole units allow.
        let (u0, u1) = (t * units / threads, (t + 1) * units / threads);
        let scratch = pieces.next().unwrap_or_default();
        *slot = Some(if by_rows {
            part(0, blocks, u0, u1, scratch)
        } else {
            part(u0, u1, 0, rows, scratch)
        });
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, p| {
        if !f(p) {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// Splits an output of `n` pixels, `row` a row, in blocked layout, over
/// the threads by rows modulo `d`: part `t` takes every block and the rows
/// `r` with `r mod d` in its own range of the `d` phases (as even as whole
/// phases allow), and its own `per` values of `scratch`. For kernels whose
/// tiles take rows `d` apart (a dilated Winograd tile), where bands of
/// rows would share out unevenly.
#[allow(clippy::too_many_arguments)]
pub(super) fn split_phases(
    blocks: usize,
    (d, row, n): (usize, usize, usize),
    co: usize,
    out: &mut [f32],
    (scratch, per): (&mut [f32], usize),
    par: Par<'_>,
    f: &(dyn Fn(Part<'_>) -> bool + Sync),
) -> bool {
    let end = blocks * BLOCK * n;
    if out.len() < end || scratch.len() < per || d == 0 || row == 0 {
        return false;
    }
    let ptr = out.as_mut_ptr();
    let mut threads = par.threads().clamp(1, MAX_THREADS).min(d);
    if let Some(fit) = scratch.len().checked_div(per) {
        threads = threads.min(fit).max(1);
    }
    let mut pieces = scratch.chunks_mut(per.max(1));
    let mut parts: [Option<Part<'_>>; MAX_THREADS] = Default::default();
    for (t, slot) in parts.iter_mut().take(threads).enumerate() {
        let (p0, p1) = (t * d / threads, (t + 1) * d / threads);
        let phases = Phases { d, p0, p1, row };
        let scratch = pieces.next().unwrap_or_default();
        *slot = Some(Part::share(
            (ptr, end),
            Layout::Blocked,
            (co, n),
            (0, blocks),
            (0, n),
            phases,
            None,
            scratch,
        ));
    }
    let ok = core::sync::atomic::AtomicBool::new(true);
    par.for_parts(&mut parts, &|_, p| {
        if !f(p) {
            ok.store(false, core::sync::atomic::Ordering::Relaxed);
        }
    });
    ok.load(core::sync::atomic::Ordering::Relaxed)
}

/// Runs a 1×1 convolution; false when a buffer is shorter than its shape.
pub(crate) fn pointwise<F: MulAdd>(op: &Pointwise<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    let blocks = op.co.div_ceil(BLOCK);
    let in_len = match op.in_layout {
        Layout::Planar => op.ci * op.n,
        Layout::Blocked => op.ci.div_ceil(BLOCK) * BLOCK * op.n,
    };
    if op.x.len() < in_len
        || !(op.group == 16 || op.group == 64)
        || op.w.len() < op.co.div_ceil(op.group) * op.ci * op.group
        || op.bias.is_some_and(|b| b.len() < op.co)
    {
        return false;
    }
    split(
        blocks,
        (op.n, 1),
        op.out_layout,
        op.co,
        out,
        op.residual,
        par,
        &|p| {
            at_level::<F, _>(op, p);
            true
        },
    )
}

impl Job for Pointwise<'_> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run<L: Lanes>(&self, p: Part<'_>) {
        // 24 accumulators in 32 registers at AVX-512; 12 (two registers
        // each) in 16 at AVX2.
        if L::WIDE {
            if self.group == 64 {
                pointwise_part::<L, 6, 64, true>(self, p)
            } else {
                pointwise_part::<L, 6, 16, false>(self, p)
            }
        } else if self.group == 64 {
            pointwise_part::<L, 6, 64, false>(self, p)
        } else {
            pointwise_part::<L, 6, 16, false>(self, p)
        }
    }
}

/// Pixel tiles per pixel block: one k-slice of a group's weights stays in
/// L1 while it is used for this many tiles.
const PB: usize = 16;

/// Input channels per k-slice: 128 × 64 weights are 32 KiB.
const KC: usize = 128;

/// Partial sums of one block of tiles between k-slices, on whole cache
/// lines (64-byte aligned: `V` alone is aligned to 4, and an AVX-512
/// access straddling two lines costs two; the direct path ran ~1.5× slower
/// when the stack happened to misalign it).
#[repr(C, align(64))]
struct Partial<const OB: usize, const PX: usize>([[[V; OB]; PX]; PB]);

impl<const OB: usize, const PX: usize> Partial<OB, PX> {
    fn zero() -> Self {
        Self([[[[0.0; BLOCK]; OB]; PX]; PB])
    }
}

/// Output blocks `p.b0..p.b1`, all pixels: blocks of PB tiles of PX
/// pixels, each over OB output blocks at a time and the input channels in
/// k-slices of KC (the partial sums stay exact: each output is still one
/// sum in input-channel order). `FOUR`: tiles of up to four output blocks
/// (else one). The shapes are chosen by that constant itself, not by a
/// comparison: the compiler then leaves the other tiles out of this copy
/// (every tile shape was compiled for every vector type before: 96 copies
/// of the inner tile where 36 run).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn pointwise_part<L: Lanes, const PX: usize, const G: usize, const FOUR: bool>(
    op: &Pointwise<'_>,
    mut p: Part<'_>,
) {
    let ob = if FOUR { 4 } else { 1 };
    let (qs, qe) = (p.q0, p.q1);
    if qe - qs < PX {
        for q in qs..qe {
            for b in p.b0..p.b1 {
                pointwise_block::<L, 1, 1, G>(op, &mut p, &[q], b);
            }
        }
        return;
    }
    // Pixels left over at the end are covered by one more tile ending at
    // the part's last pixel, overlapping the one before (the shared pixels
    // are computed twice, to the same bits): a leftover pixel at PX = 1
    // costs 6–24× a tiled one.
    let mut q0 = qs;
    while q0 < qe {
        let qa = q0;
        let mut starts = [0usize; PB];
        let mut tiles = 0;
        while tiles < PB && q0 < qe {
            starts[tiles] = q0.min(qe - PX);
            tiles += 1;
            q0 += PX;
        }
        let starts = &starts[..tiles];
        let mut b = p.b0;
        while b < p.b1 {
            // A tile stays inside one 64-channel group of the weights (a
            // thread's part may start mid-group).
            let nb = (p.b1 - b).min(ob).min(G / BLOCK - b % (G / BLOCK));
            if !FOUR {
                pointwise_block::<L, PX, 1, G>(op, &mut p, starts, b);
                b += nb;
                continue;
            }
            // At AVX-512 a group's last 1–3 blocks (80, 112, 144… output
            // channels) take wider tiles over the same pixels, 24
            // accumulators each: a 6 × 1 tile would wait on its loads.
            let done = match nb {
                3 => narrow::<L, 8, 3, G>(op, &mut p, (qa, q0.min(qe)), b),
                2 => narrow::<L, 12, 2, G>(op, &mut p, (qa, q0.min(qe)), b),
                1 => narrow::<L, 24, 1, G>(op, &mut p, (qa, q0.min(qe)), b),
                _ => false,
            };
            if !done {
                match nb {
                    4 => pointwise_block::<L, PX, 4, G>(op, &mut p, starts, b),
                    3 => pointwise_block::<L, PX, 3, G>(op, &mut p, starts, b),
                    2 => pointwise_block::<L, PX, 2, G>(op, &mut p, starts, b),
                    _ => pointwise_block::<L, PX, 1, G>(op, &mut p, starts, b),
                }
            }
            b += nb;
        }
    }
}

/// Pixels `qa..qb` in tiles of PX (the last one overlapping its neighbour
/// to end at the part's last pixel) × output blocks `b..b+OB`; false
/// (nothing done) when the part has fewer pixels than PX or these need
/// more than [`PB`] tiles.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn narrow<L: Lanes, const PX: usize, const OB: usize, const G: usize>(
    op: &Pointwise<'_>,
    p: &mut Part<'_>,
    (qa, qb): (usize, usize),
    b: usize,
) -> bool {
    let qe = p.q1;
    if qe - p.q0 < PX || (qb - qa).div_ceil(PX) > PB {
        return false;
    }
    let mut starts = [0usize; PB];
    let mut tiles = 0;
    let mut q = qa;
    while q < qb {
        starts[tiles] = q.min(qe - PX);
        tiles += 1;
        q += PX;
    }
    pointwise_block::<L, PX, OB, G>(op, p, &starts[..tiles], b);
    true
}

/// Tiles of PX pixels from each of `starts` (at most [`PB`]) × output
/// blocks `b..b+OB` (inside one 64-channel group of the packed weights),
/// k-slice by k-slice.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn pointwise_block<L: Lanes, const PX: usize, const OB: usize, const G: usize>(
    op: &Pointwise<'_>,
    p: &mut Part<'_>,
    starts: &[usize],
    b: usize,
) {
    L::enter(PointwiseBlock::<L, PX, OB, G> {
        op,
        p,
        starts,
        b,
        lanes: PhantomData,
    })
}

/// [`pointwise_block`]'s arguments, for [`Lanes::enter`].
struct PointwiseBlock<'a, 'o, 'p, L, const PX: usize, const OB: usize, const G: usize> {
    op: &'a Pointwise<'o>,
    p: &'a mut Part<'p>,
    starts: &'a [usize],
    b: usize,
    lanes: PhantomData<L>,
}

impl<L: Lanes, const PX: usize, const OB: usize, const G: usize> Region
    for PointwiseBlock<'_, '_, '_, L, PX, OB, G>
{
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn call(self) {
        pointwise_block_in::<L, PX, OB, G>(self.op, self.p, self.starts, self.b)
    }
}

/// [`pointwise_block`] inside the function [`Lanes::enter`] made for it.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn pointwise_block_in<L: Lanes, const PX: usize, const OB: usize, const G: usize>(
    op: &Pointwise<'_>,
    p: &mut Part<'_>,
    starts: &[usize],
    b: usize,
) {
    // One k-slice: no sums kept between slices, so no batch of them to
    // zero (24 KiB at AVX-512, which pushed the weights out of L1).
    if op.ci <= KC {
        let mut unused = [[[0.0; BLOCK]; OB]; PX];
        for &q in starts {
            match op.in_layout {
                Layout::Planar => pointwise_tile::<L, PX, OB, G, 1>(op, p, q, b, (0, op.ci), &mut unused),
                Layout::Blocked => {
                    pointwise_tile::<L, PX, OB, G, BLOCK>(op, p, q, b, (0, op.ci), &mut unused)
                }
            }
        }
        return;
    }
    let mut partial = Partial::<OB, PX>::zero();
    let mut k0 = 0;
    while k0 < op.ci {
        let k1 = (k0 + KC).min(op.ci);
        for (part, &q) in partial.0.iter_mut().zip(starts) {
            let ks = (k0, k1);
            match op.in_layout {
                Layout::Planar => pointwise_tile::<L, PX, OB, G, 1>(op, p, q, b, ks, part),
                Layout::Blocked => pointwise_tile::<L, PX, OB, G, BLOCK>(op, p, q, b, ks, part),
            }
        }
        k0 = k1;
    }
}

/// Pixels `p0..p0+PX` × output blocks `b..b+OB`, input channels
/// `ks.0..ks.1`, for input pixels `PS` values apart (1 planar, 16
/// blocked): starts from `part` unless `ks.0 = 0`, leaves its sums there
/// unless `ks.1` is the last channel, where it writes the outputs.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn pointwise_tile<L: Lanes, const PX: usize, const OB: usize, const G: usize, const PS: usize>(
    op: &Pointwise<'_>,
    p: &mut Part<'_>,
    p0: usize,
    b: usize,
    ks: (usize, usize),
    part: &mut [[V; OB]; PX],
) {
    let (k, n) = (op.ci, op.n);
    // Row `ic` of this tile's weights: `w[(ic − ks.0)·64 + off ..][..16·OB]`.
    let g = b * BLOCK / G;
    let w = &op.w[(g * k + ks.0) * G..];
    let off = (b * BLOCK) % G;
    // Input channel `ic` of pixel `p0 + j`: planar rows `n` apart, or
    // blocks of 16 lanes `16·n` apart.
    let (x, block_stride, lanes) = match PS {
        1 => (&op.x[p0..], n, 1),
        _ => (&op.x[p0 * BLOCK..], n * BLOCK, BLOCK),
    };
    let block_at = |kb: usize| kb * block_stride;
    let mut acc = [[L::zero(); OB]; PX];
    if ks.0 > 0 {
        for (a, v) in acc.iter_mut().zip(part.iter()) {
            for (a, v) in a.iter_mut().zip(v) {
                *a = L::load(v);
            }
        }
    }
    let mut ic = ks.0;
    if PS == BLOCK {
        // Whole blocks of 16 input channels: constant offsets, no
        // per-channel address arithmetic or bounds checks. The planes and
        // the weight rows are walked by iterators: computing each block's
        // offsets and slicing them anew cost ~40 instructions a block, and
        // the 1×1 path at AVX2 (one block of output channels a tile) ran
        // ~10 % slower for it.
        let nblk = (ks.1 - ic) / BLOCK;
        let planes = x[block_at(ic / BLOCK)..].chunks(block_stride);
        let mut nexts = x[block_at(ic / BLOCK)..].chunks(block_stride).skip(1);
        let wblocks = w[off..].chunks(BLOCK * G);
        for (plane, wblk) in planes.zip(wblocks).take(nblk) {
            let (Some(xb), Some(wb)) = (plane.get(..PX * BLOCK), wblk.get(..(BLOCK - 1) * G + OB * BLOCK))
            else {
                break;
            };
            // The next block's lines, one plane further on.
            if let Some(next) = nexts.next().and_then(|n| n.get(..PX * BLOCK)) {
                for j in 0..PX {
                    super::simd::prefetch(&next[j * BLOCK]);
                }
            }
            for l in 0..BLOCK {
                let mut wv = [L::zero(); OB];
                for (ob, v) in wv.iter_mut().enumerate() {
                    let at = l * G + ob * BLOCK;
                    *v = L::load(vector(&wb[at..at + BLOCK], 0));
                }
                for (j, row) in acc.iter_mut().enumerate() {
                    let xv = L::splat(xb[j * BLOCK + l]);
                    for (a, wv) in row.iter_mut().zip(&wv) {
                        *a = a.mul_add(xv, *wv);
                    }
                }
            }
            ic += BLOCK;
        }
    }
    for wrow in w[(ic - ks.0) * G..].chunks(G).take(ks.1 - ic) {
        let wrow = &wrow[off..];
        let mut wv = [L::zero(); OB];
        for (ob, v) in wv.iter_mut().enumerate() {
            *v = L::load(vector(wrow, ob));
        }
        let at = match PS {
            1 => ic * block_stride,
            _ => block_at(ic / lanes) + ic % lanes,
        };
        let xs = &x[at..at + (PX - 1) * PS + 1];
        for (j, row) in acc.iter_mut().enumerate() {
            let xv = L::splat(xs[j * PS]);
            for (a, wb) in row.iter_mut().zip(&wv) {
                *a = a.mul_add(xv, *wb);
            }
        }
        ic += 1;
    }
    // One store of the accumulators after the loop: taken by reference
    // below, LLVM otherwise keeps a memory copy up to date on every
    // iteration (one store per FMA; measured 1.3× slower overall).
    let acc = core::hint::black_box(acc);
    if ks.1 < k {
        for (o, a) in part.iter_mut().zip(&acc) {
            for (v, x) in o.iter_mut().zip(a) {
                x.store(v);
            }
        }
        return;
    }
    finish::<L, PX, OB>(&op.epi(), p, p0, b, &acc);
}

/// The epilogue of a 1×1 tile, in the planar GEMM's order: bias, then the
/// residual, then the activation, stored in the output's layout.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn finish<L: Lanes, const PX: usize, const OB: usize>(
    op: &Epi<'_>,
    p: &mut Part<'_>,
    p0: usize,
    b: usize,
    acc: &[[L; OB]; PX],
) {
    let n = op.n;
    for ob in 0..OB {
        let blk = b + ob;
        let bias = match op.bias.and_then(|bs| bs.get(blk * BLOCK..)) {
            Some(bs) if bs.len() >= BLOCK => L::load(vector(bs, 0)),
            _ => L::load(&core::array::from_fn(|l| {
                op.bias
                    .and_then(|bs| bs.get(blk * BLOCK + l))
                    .copied()
                    .unwrap_or(0.0)
            })),
        };
        match op.out_layout {
            Layout::Blocked => {
                let at = (blk * n + p0) * BLOCK;
                let residual = p.residual.and_then(|r| r.get(at..at + PX * BLOCK));
                if p.residual.is_some() && residual.is_none() {
                    continue;
                }
                let mut col = [L::zero(); PX];
                for (c, a) in col.iter_mut().zip(acc) {
                    *c = a[ob];
                }
                if let Some(d) = p.out.run(blk, p0, PX) {
                    store_run(d, &col, bias, residual, op.activation);
                }
            }
            Layout::Planar => {
                // Without a residual the activation goes on the vectors.
                let on_vectors =
                    p.residual.is_none() && matches!(op.activation, Activation::Relu | Activation::Relu6);
                let lanes = op.co.saturating_sub(blk * BLOCK).min(BLOCK);
                if p.residual.is_none() && (on_vectors || op.activation == Activation::None) {
                    // Transposed in registers, eight pixels at a time.
                    let mut v = [L::zero(); PX];
                    for (v, a) in v.iter_mut().zip(acc) {
                        let x = a[ob].add(bias);
                        *v = match op.activation {
                            Activation::Relu => x.relu(),
                            Activation::Relu6 => x.relu6(),
                            _ => x,
                        };
                    }
                    let Some(mut runs) = p.out.planar_runs::<PX>(blk, p0, lanes) else {
                        continue;
                    };
                    let mut at = 0;
                    while at < PX {
                        let m = (PX - at).min(8);
                        let mut eight = [L::zero(); 8];
                        for (e, v) in eight.iter_mut().zip(&v[at..]) {
                            *e = *v;
                        }
                        if let Some(cols) = runs.columns(at, m) {
                            L::store_transposed(&eight, cols);
                        }
                        at += 8;
                    }
                    continue;
                }
                // Else the PX pixels' vectors, then one run of PX values
                // per channel (a transpose through the stack: contiguous
                // stores, the residual and activation over a run).
                let mut x = [[0f32; BLOCK]; PX];
                for (x, a) in x.iter_mut().zip(acc) {
                    let v = a[ob].add(bias);
                    match (on_vectors, op.activation) {
                        (true, Activation::Relu) => v.relu().store(x),
                        (true, Activation::Relu6) => v.relu6().store(x),
                        _ => v.store(x),
                    }
                }
                // The block's runs, checked once (a check per channel
                // took as long as the copy).
                let residual = p.residual;
                let Some(mut runs) = p.out.planar_runs::<PX>(blk, p0, lanes) else {
                    continue;
                };
                // `l` indexes the inner axis of `x` (a transpose).
                #[allow(clippy::needless_range_loop)]
                for l in 0..lanes {
                    let at = (blk * BLOCK + l) * n + p0;
                    let residual = residual.and_then(|r| r.get(at..at + PX));
                    if p.residual.is_some() && residual.is_none() {
                        continue;
                    }
                    let Some(d) = runs.get(l) else {
                        break;
                    };
                    for (j, d) in d.iter_mut().enumerate() {
                        *d = x[j][l];
                    }
                    if let Some(r) = residual {
                        for (d, r) in d.iter_mut().zip(r) {
                            *d += r;
                        }
                    }
                    if !on_vectors {
                        op.activation.apply_all(d);
                    }
                }
            }
        }
    }
}

/// Runs an ungrouped convolution (any kernel, dilation and padding; stride
/// 1 or 2 from a blocked input, any from a planar one), writing either
/// layout; false when a buffer is shorter than the shapes need or the
/// output shape is not the one the stride, padding and dilation give.
pub(crate) fn direct<F: MulAdd>(op: &Direct<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    let [ci, h, w] = op.in_shape;
    let [co, ho, wo] = op.out_shape;
    let st = op.st;
    let taps = st.kernel[0] * st.kernel[1];
    let in_len = match op.in_layout {
        Layout::Blocked => ci.div_ceil(BLOCK) * BLOCK * h * w,
        Layout::Planar => ci * h * w,
    };
    // The output size the stride, padding and dilation give (the tile
    // reads every input position this implies).
    let size = |n: usize, k: usize, s: usize, d: usize, p0: usize, p1: usize| {
        (n + p0 + p1).checked_sub(d * (k - 1) + 1).map(|v| v / s + 1)
    };
    if st.groups != 1
        || st.kernel.contains(&0)
        || st.dilation.contains(&0)
        || st.stride.contains(&0)
        || (op.in_layout == Layout::Blocked && st.stride != [1, 1] && st.stride != [2, 2])
        || size(
            h,
            st.kernel[0],
            st.stride[0],
            st.dilation[0],
            st.padding[0],
            st.padding[2],
        ) != Some(ho)
        || size(
            w,
            st.kernel[1],
            st.stride[1],
            st.dilation[1],
            st.padding[1],
            st.padding[3],
        ) != Some(wo)
        || op.x.len() < in_len
        || op.w.len() < co.div_ceil(DIRECT_GROUP) * ci.div_ceil(BLOCK) * taps * BLOCK * DIRECT_GROUP
        || op.bias.is_some_and(|b| b.len() < co)
    {
        return false;
    }
    split(
        co.div_ceil(BLOCK),
        (ho, wo),
        op.out_layout,
        co,
        out,
        op.residual,
        par,
        &|p| {
            at_level::<F, _>(op, p);
            true
        },
    )
}

impl Direct<'_> {
    fn epi(&self) -> Epi<'_> {
        Epi {
            bias: self.bias,
            activation: self.st.activation,
            out_layout: self.out_layout,
            co: self.out_shape[0],
            n: self.out_shape[1] * self.out_shape[2],
        }
    }
}

impl Job for Direct<'_> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run<L: Lanes>(&self, p: Part<'_>) {
        let [_, h, w] = self.in_shape;
        let [sy, sx] = self.st.stride;
        match (self.in_layout, sx) {
            (Layout::Blocked, 1) => self.run_from::<L, _>(p, BlockedIn::<1> { h, w }),
            (Layout::Blocked, _) => self.run_from::<L, _>(p, BlockedIn::<2> { h, w }),
            (Layout::Planar, 2) => self.run_from::<L, _>(p, PlanarIn::<2> { h, w, sy, sx }),
            (Layout::Planar, _) => self.run_from::<L, _>(p, PlanarIn::<0> { h, w, sy, sx }),
        }
    }
}

/// Where the direct tile finds its input values: channel `l` of a block
/// and the input of pixel `j` of a tile are fixed steps from the tile's
/// first value ([`BlockedIn`]: steps known when compiled).
trait Source: Copy {
    /// Whether the input is blocked (every step a compile-time constant).
    const BLOCKED: bool;
    /// Elements from one channel of a block to the next.
    fn lane(&self) -> usize;
    /// Elements from one output pixel's input to its right neighbour's
    /// (the column stride included).
    fn px(&self) -> usize;
    /// Elements from one output row's input to the next's (the row
    /// stride included).
    fn row(&self) -> usize;
    /// Stride `(rows, columns)`.
    fn stride(&self) -> (usize, usize);
    /// Index of channel block `cb`'s first channel at row `iy`, column `ix`.
    fn at(&self, cb: usize, iy: usize, ix: usize) -> usize;
}

/// A blocked input read with stride `S` on both axes.
#[derive(Clone, Copy)]
struct BlockedIn<const S: usize> {
    h: usize,
    w: usize,
}

impl<const S: usize> Source for BlockedIn<S> {
    const BLOCKED: bool = true;
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn lane(&self) -> usize {
        1
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn px(&self) -> usize {
        S * BLOCK
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn row(&self) -> usize {
        S * self.w * BLOCK
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn stride(&self) -> (usize, usize) {
        (S, S)
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn at(&self, cb: usize, iy: usize, ix: usize) -> usize {
        ((cb * self.h + iy) * self.w + ix) * BLOCK
    }
}

/// A planar input (`[ci, h, w]`), column stride `S` (0: `sx`, known
/// only at run time), row stride `sy`.
#[derive(Clone, Copy)]
struct PlanarIn<const S: usize> {
    h: usize,
    w: usize,
    sy: usize,
    sx: usize,
}

impl<const S: usize> Source for PlanarIn<S> {
    const BLOCKED: bool = false;
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn lane(&self) -> usize {
        self.h * self.w
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn px(&self) -> usize {
        if S > 0 {
            S
        } else {
            self.sx
        }
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn row(&self) -> usize {
        self.sy * self.w
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn stride(&self) -> (usize, usize) {
        (self.sy, self.px())
    }
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn at(&self, cb: usize, iy: usize, ix: usize) -> usize {
        (cb * BLOCK * self.h + iy) * self.w + ix
    }
}

impl Direct<'_> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run_from<L: Lanes, S: Source>(&self, mut p: Part<'_>, src: S) {
        let gb = DIRECT_GROUP / BLOCK;
        let mut b = p.b0;
        while b < p.b1 {
            // Tiles stay inside one group of the packed weights. At
            // AVX-512 (32 registers) up to 5 blocks (20–24 accumulators)
            // from a blocked input; else one block of two or four
            // registers (a planar input, the image or few channels, takes
            // at most 2 blocks: its layers are small, and fewer tile shapes
            // keep the build short). Its tiles are 24 accumulators (24
            // pixels × 1 block, 12 × 2): with 8 pixels, the loop's
            // overhead per tap (3 channels, 8 FMAs each) left the small
            // network's stem at 60 GFLOP/s; 24 took it from 0.20 to
            // 0.17 ms on one thread (Lite0's, 12 × 2: 1.21 -> 1.14 ms).
            // A single block from a blocked input takes 24 pixels too
            // (the 16 -> 16 layer at 88×160: 0.95× the time of 8; two
            // blocks at 12 pixels measured 1.03×, so they keep 8).
            // Branches on constants, so only the reachable tiles compile.
            let nb = if S::BLOCKED {
                if L::WIDE {
                    let nb = (p.b1 - b).min(gb - b % gb).min(5);
                    match nb {
                        5 => direct_blocks::<L, 4, 5, false, S>(self, &mut p, b, src),
                        4 => direct_blocks::<L, 6, 4, false, S>(self, &mut p, b, src),
                        3 => direct_blocks::<L, 8, 3, false, S>(self, &mut p, b, src),
                        2 => direct_blocks::<L, 8, 2, false, S>(self, &mut p, b, src),
                        _ => direct_blocks::<L, 24, 1, false, S>(self, &mut p, b, src),
                    }
                    nb
                } else {
                    self.narrow::<L, S>(&mut p, b, src);
                    1
                }
            } else if L::WIDE {
                let nb = (p.b1 - b).min(gb - b % gb).min(2);
                if nb == 2 {
                    direct_blocks::<L, 12, 2, false, S>(self, &mut p, b, src);
                } else {
                    direct_blocks::<L, 24, 1, false, S>(self, &mut p, b, src);
                }
                nb
            } else {
                self.narrow::<L, S>(&mut p, b, src);
                1
            };
            b += nb.max(1);
        }
    }
}

impl Direct<'_> {
    /// Block `b` with 8 or 16 registers (AVX2, NEON, portable): at AVX2
    /// ([`Lanes::PAIRS`]) a block of at most 8 real channels (the last of
    /// a 24-channel layer, or an 8-channel one) takes tiles of two pixels
    /// per vector ([`Lanes::splat2`]), so no FMA is spent on its empty
    /// half.
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn narrow<L: Lanes, S: Source>(&self, p: &mut Part<'_>, b: usize, src: S) {
        if L::PAIRS && self.out_shape[0].saturating_sub(b * BLOCK) <= BLOCK / 2 {
            direct_blocks::<L, 6, 1, true, S>(self, p, b, src);
        } else {
            direct_blocks::<L, 6, 1, false, S>(self, p, b, src);
        }
    }
}

/// Output blocks `b..b+OB`, every output pixel: each row's interior (every
/// tap inside the input row) in tiles of PX pixels, the last one
/// overlapping its neighbour; the border columns in column tiles of PX
/// rows (where those rows take the same kernel rows) and the rest one
/// pixel at a time, each tile skipping the taps that fall outside the
/// input.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn direct_blocks<L: Lanes, const PX: usize, const OB: usize, const HALF: bool, S: Source>(
    op: &Direct<'_>,
    p: &mut Part<'_>,
    b: usize,
    src: S,
) {
    L::enter(DirectBlocks::<L, PX, OB, HALF, S> {
        op,
        p,
        b,
        src,
        lanes: PhantomData,
    })
}

/// [`direct_blocks`]' arguments, for [`Lanes::enter`].
struct DirectBlocks<'a, 'd, 'p, L, const PX: usize, const OB: usize, const HALF: bool, S> {
    op: &'a Direct<'d>,
    p: &'a mut Part<'p>,
    b: usize,
    src: S,
    lanes: PhantomData<L>,
}

impl<L: Lanes, const PX: usize, const OB: usize, const HALF: bool, S: Source> Region
    for DirectBlocks<'_, '_, '_, L, PX, OB, HALF, S>
{
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn call(self) {
        direct_blocks_in::<L, PX, OB, HALF, S>(self.op, self.p, self.b, self.src)
    }
}

/// [`direct_blocks`] inside the function [`Lanes::enter`] made for it.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn direct_blocks_in<L: Lanes, const PX: usize, const OB: usize, const HALF: bool, S: Source>(
    op: &Direct<'_>,
    p: &mut Part<'_>,
    b: usize,
    src: S,
) {
    let [_, _, w] = op.in_shape;
    let [_, _, wo] = op.out_shape;
    let st = op.st;
    let kw = st.kernel[1];
    let dw = st.dilation[1];
    let pl = st.padding[1];
    let (_, sx) = src.stride();
    // Output columns whose every tap is inside the row: [lo, hi), those
    // with `ox·sx ≥ pl` and `ox·sx − pl + last_tap ≤ w − 1`.
    let lo = pl.div_ceil(sx).min(wo);
    let last_tap = (kw - 1) * dw;
    let hi = if w + pl > last_tap {
        ((w + pl - last_tap - 1) / sx + 1).clamp(lo, wo)
    } else {
        lo
    };
    let (mut wide, mut nwide) = ([Tile::default(); PB], 0);
    let (mut single, mut nsingle) = ([Tile::default(); PB], 0);
    let (h, kh, dh) = (op.in_shape[1], st.kernel[0], st.dilation[0]);
    let (pt, sy) = (st.padding[0] as isize, src.stride().0);
    // The batches' partial sums, made once here: each batch starts every
    // tile from zero itself. (Zeroing 24–48 KiB a batch pushed the weights
    // out of L1: the direct path ran 1.5–2.4× slower with batches under
    // the array's size.)
    let mut partial = Partial::<OB, PX>::zero();
    let mut partial1 = Partial::<OB, 1>::zero();
    // Pixels per tile (two per vector when HALF).
    let tw = if HALF { 2 * PX } else { PX };
    // The interior in tiles, if it holds one; else every pixel alone.
    let (a, z) = if hi - lo >= tw { (lo, hi) } else { (lo, lo) };
    let (r0, r1) = (p.q0 / wo.max(1), p.q1 / wo.max(1));
    // The interior's last few columns (at most half a tile past the last
    // whole one) join the border columns where the rows are enough for
    // column tiles: an overlapping last tile would compute a whole tile
    // for them in every row (at 13 interior columns, 18 pixels for 13:
    // XFeat's 9×15 layers ran 0.75× the time this way at AVX2). With more
    // columns left, or fewer rows, the overlap measured as fast or faster.
    let rest = (z - a) % tw;
    let z = if S::BLOCKED && !HALF && rest > 0 && 2 * rest <= tw && r1 - r0 >= PX + 2 {
        z - rest
    } else {
        z
    };
    // The kernel rows inside the input for output row `oy`.
    let rows_of = |oy: usize| taps_inside((oy * sy) as isize - pt, 1, dh, kh, h);
    for oy in r0..r1 {
        // Once per output row (a division by the dilation).
        let rows = rows_of(oy);
        let mut ox = a;
        while ox < z {
            let t = Tile {
                oy,
                ox: ox.min(z - tw),
                rows,
                down: false,
            };
            push_tile::<L, PX, OB, HALF, S>((op, p, b, src), (&mut wide, &mut nwide), t, &mut partial);
            ox += tw;
        }
    }
    // The border columns (every column when the interior holds no tile;
    // the interior's last few, above): PX rows of one column make a tile
    // of their own (a column tile, `down`) where they take the same
    // kernel rows, as good as a row's tile; the rest go one pixel at a
    // time. (At dilation 4, 8 of 40
    // columns are border: one pixel at a time, they took a third of the
    // layer.) Column tiles read a blocked input at a pixel step of whole
    // rows; a pair tile (HALF) has no column form.
    for ox in (0..a).chain(z..wo) {
        let mut oy = r0;
        while oy < r1 {
            let rows = rows_of(oy);
            let mut n = 1;
            while S::BLOCKED && !HALF && n < PX && oy + n < r1 && rows_of(oy + n) == rows {
                n += 1;
            }
            if S::BLOCKED && !HALF && n == PX {
                let t = Tile {
                    oy,
                    ox,
                    rows,
                    down: true,
                };
                push_tile::<L, PX, OB, HALF, S>((op, p, b, src), (&mut wide, &mut nwide), t, &mut partial);
            } else {
                for oy in oy..oy + n {
                    let t = Tile {
                        oy,
                        ox,
                        rows,
                        down: false,
                    };
                    push_tile::<L, 1, OB, false, S>(
                        (op, p, b, src),
                        (&mut single, &mut nsingle),
                        t,
                        &mut partial1,
                    );
                }
            }
            oy += n;
        }
    }
    direct_batch::<L, PX, OB, HALF, S>(op, p, &wide[..nwide], b, src, &mut partial);
    direct_batch::<L, 1, OB, false, S>(op, p, &single[..nsingle], b, src, &mut partial1);
}

/// Adds tile `t` to the batch `tiles[..*n]`, and runs the batch
/// ([`direct_batch`]) once it holds [`PB`] tiles.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn push_tile<L: Lanes, const PX: usize, const OB: usize, const HALF: bool, S: Source>(
    (op, p, b, src): (&Direct<'_>, &mut Part<'_>, usize, S),
    (tiles, n): (&mut [Tile; PB], &mut usize),
    t: Tile,
    partial: &mut Partial<OB, PX>,
) {
    if let Some(slot) = tiles.get_mut(*n) {
        *slot = t;
        *n += 1;
    }
    if *n == PB {
        direct_batch::<L, PX, OB, HALF, S>(op, p, tiles, b, src, partial);
        *n = 0;
    }
}

/// Where one tile of a [`direct_batch`] lies.
#[derive(Clone, Copy, Default)]
struct Tile {
    /// Output row.
    oy: usize,
    /// First output column.
    ox: usize,
    /// The kernel rows inside the input for this output row: computed once
    /// per row (a division by the dilation: per tile and k-slice, such
    /// set-up cost more than a tenth of a 6×1 tile's time at AVX2).
    rows: (usize, usize),
    /// A column tile: its pixels are rows `oy..oy + PX` of column `ox`
    /// (all taking `rows`), not columns `ox..` of row `oy`.
    down: bool,
}

/// Tiles of PX pixels at `tiles` (at most [`PB`]) ×
/// output blocks `b..b+OB`, k-slice by k-slice: one block of 16 input
/// channels × the kernel rows whose weights fit 40 KiB (in L1 for every
/// tile of the batch: a whole 3×3 kernel up to 4 output blocks). A tile
/// whose kernel row falls outside the input skips that slice. `partial` holds the sums between slices (its
/// values on entry are never read).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn direct_batch<L: Lanes, const PX: usize, const OB: usize, const HALF: bool, S: Source>(
    op: &Direct<'_>,
    p: &mut Part<'_>,
    tiles: &[Tile],
    b: usize,
    src: S,
    partial: &mut Partial<OB, PX>,
) {
    if tiles.is_empty() {
        return;
    }
    let ci = op.in_shape[0];
    let [kh, _] = op.st.kernel;
    // Kernel rows per k-slice: as many as keep the slice's weights (for
    // this tile's OB blocks, 1 KiB a tap and block) within 40 KiB, at
    // least one. (16 KiB split a 3×3 kernel into one slice per row at 4
    // blocks: each tile stored and reloaded its sums 3× as often, and
    // XFeat ran 5 % slower at AVX-512. Whole kernels of several input
    // blocks in one slice measured no faster at either level.)
    let rows = (40 / (op.st.kernel[1] * OB).max(1)).max(1);
    // Whether a tile has no sums yet (its first slice starts from zero).
    let mut fresh = [true; PB];
    for cb in 0..ci.div_ceil(BLOCK) {
        let lanes = (ci - cb * BLOCK).min(BLOCK);
        let mut k0 = 0;
        while k0 < kh {
            let k1 = (k0 + rows).min(kh);
            for ((part, t), fresh) in partial.0.iter_mut().zip(tiles).zip(fresh.iter_mut()) {
                let (oy, ox) = (t.oy, t.ox);
                // The slice's kernel rows inside the input.
                let (r0, r1) = (t.rows.0.max(k0), t.rows.1.min(k1));
                if r0 >= r1 {
                    continue;
                }
                let at = (oy, ox, cb, (r0, r1), t.down);
                // A planar input takes the one tile for any channel count.
                if S::BLOCKED {
                    if lanes == BLOCK {
                        direct_tile::<L, PX, OB, BLOCK, HALF, S>(op, at, b, BLOCK, part, *fresh, src);
                    } else if L::PAIRS && lanes == BLOCK / 2 {
                        // The last 8 channels of a 24-channel input (XFeat).
                        direct_tile::<L, PX, OB, { BLOCK / 2 }, HALF, S>(
                            op,
                            at,
                            b,
                            BLOCK / 2,
                            part,
                            *fresh,
                            src,
                        );
                    } else {
                        direct_tile::<L, PX, OB, 0, HALF, S>(op, at, b, lanes, part, *fresh, src);
                    }
                } else {
                    direct_tile::<L, PX, OB, 0, HALF, S>(op, at, b, lanes, part, *fresh, src);
                }
                *fresh = false;
            }
            k0 = k1;
        }
    }
    let wo = op.out_shape[2];
    for ((part, t), fresh) in partial.0.iter().zip(tiles).zip(fresh) {
        let (oy, ox) = (t.oy, t.ox);
        let mut acc = [[L::zero(); OB]; PX];
        // A tile no kernel row reached (padding wider than the kernel)
        // is the bias alone.
        if !fresh {
            for (a, v) in acc.iter_mut().zip(part.iter()) {
                for (a, v) in a.iter_mut().zip(v) {
                    *a = L::load(v);
                }
            }
        }
        if t.down {
            // A column: PX pixels one output row apart.
            for (j, acc) in acc.iter().enumerate() {
                finish::<L, 1, OB>(&op.epi(), p, (oy + j) * wo + ox, b, &[*acc]);
            }
        } else if HALF {
            // Vector j holds pixels 2j (lanes 0–7) and 2j + 1 (lanes
            // 8–15) of the block's first 8 channels; its last 8 are zero
            // (as a full tile's would be: their weights are zero).
            let mut v = [[0f32; BLOCK]; PX];
            for (v, a) in v.iter_mut().zip(&acc) {
                a[0].store(v);
            }
            // Two runs of PX pixels (PX is even).
            for c in 0..2 {
                let px: [[L; OB]; PX] = core::array::from_fn(|i| {
                    let q = c * PX + i;
                    let h = (q % 2) * 8;
                    [L::load(&core::array::from_fn(
                        |l| if l < 8 { v[q / 2][h + l] } else { 0.0 },
                    )); OB]
                });
                finish::<L, PX, OB>(&op.epi(), p, oy * wo + ox + c * PX, b, &px);
            }
        } else {
            finish::<L, PX, OB>(&op.epi(), p, oy * wo + ox, b, &acc);
        }
    }
}

/// Taps `k` of a kernel axis (`n` taps, `d` apart) that land inside
/// `[0, len)` for every one of `span` outputs starting at input position
/// `x0` (which may be negative): `k0..k1`.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn taps_inside(x0: isize, span: usize, d: usize, n: usize, len: usize) -> (usize, usize) {
    let k0 = if x0 >= 0 {
        0
    } else {
        (x0.unsigned_abs()).div_ceil(d)
    };
    let last = x0 + span as isize - 1;
    let k1 = if last >= len as isize {
        0
    } else {
        ((len as isize - 1 - last) as usize / d + 1).min(n)
    };
    (k0.min(k1), k1)
}

/// Adds to `part` the products of output pixels `ox..ox+PX` of row `oy`
/// (every one inside the input for the taps it takes, or PX = 1) × output
/// blocks `b..b+OB` with channel block `cb` (its first `lanes` channels;
/// `LANES` = 16 or 8 when known) and kernel rows `ky.0..ky.1` (all inside the
/// input), in the order kernel row, kernel column, channel; the taps
/// outside the input row are skipped. `src` says where the values are;
/// the sums start from zero when `fresh`, else from `part`.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn direct_tile<
    L: Lanes,
    const PX: usize,
    const OB: usize,
    const LANES: usize,
    const HALF: bool,
    S: Source,
>(
    op: &Direct<'_>,
    (oy, ox, cb, ky, down): (usize, usize, usize, (usize, usize), bool),
    b: usize,
    lanes: usize,
    part: &mut [[V; OB]; PX],
    fresh: bool,
    src: S,
) {
    let [ci, _, w] = op.in_shape;
    let st = op.st;
    let [kh, kw] = st.kernel;
    let [dh, dw] = st.dilation;
    let (sy, sx) = src.stride();
    let lanes = if LANES > 0 { LANES } else { lanes.clamp(1, BLOCK) };
    let (grp, off) = (b * BLOCK / DIRECT_GROUP, (b * BLOCK) % DIRECT_GROUP);
    // Pixels of the tile: two per vector when HALF.
    let npx = if HALF { 2 * PX } else { PX };
    let x0 = (ox * sx) as isize - st.padding[1] as isize;
    // A row's tile of several pixels lies in the row's interior (every
    // tap inside: `direct_blocks`), so only a single pixel or a column
    // skips taps.
    let (kx0, kx1) = if npx > 1 && !down {
        (0, kw)
    } else {
        taps_inside(x0, 1, dw, kw, w)
    };
    let mut acc = [[L::zero(); OB]; PX];
    if !fresh {
        for (a, v) in acc.iter_mut().zip(part.iter()) {
            for (a, v) in a.iter_mut().zip(v) {
                *a = L::load(v);
            }
        }
    }
    let tap_len = BLOCK * DIRECT_GROUP;
    let (lane, px) = (src.lane(), src.px());
    // From one pixel of a column tile to the next in the input: whole
    // rows (blocked input only: `direct_blocks`).
    let step = src.row();
    // Values one tap of the tile reads: from its first, `lanes` channels
    // `lane` apart and PX pixels `px` apart.
    let span = (lanes - 1) * lane + (npx - 1) * px + 1;
    let wblock = &op.w[(grp * ci.div_ceil(BLOCK) + cb) * kh * kw * tap_len + off..];
    for ky in ky.0..ky.1 {
        let iy = ((oy * sy) as isize - st.padding[0] as isize + (ky * dh) as isize) as usize;
        let wrow = &wblock[ky * kw * tap_len..];
        for kx in kx0..kx1 {
            let ix = (x0 + (kx * dw) as isize) as usize;
            let first = src.at(cb, iy, ix);
            // A slice of constant length: the loads below need no checks.
            let wb = &wrow[kx * tap_len..][..(BLOCK - 1) * DIRECT_GROUP + OB * BLOCK];
            if S::BLOCKED && !HALF && down {
                // A column: each pixel's 16 channels, whole rows apart (PX
                // checks a tap). Its own loop: with this run-time step in
                // the row tiles' loop, they ran 10–20 % slower at AVX2.
                let xs: [&V; PX] =
                    core::array::from_fn(|j| vector(op.x.get(first + j * step..).unwrap_or(&[]), 0));
                for l in 0..lanes {
                    let mut wv = [L::zero(); OB];
                    for (ob, v) in wv.iter_mut().enumerate() {
                        let at = l * DIRECT_GROUP + ob * BLOCK;
                        *v = L::load(vector(&wb[at..at + BLOCK], 0));
                    }
                    for (row, x) in acc.iter_mut().zip(&xs) {
                        let xv = L::splat(x[l]);
                        for (a, wv) in row.iter_mut().zip(&wv) {
                            *a = a.mul_add(xv, *wv);
                        }
                    }
                }
                continue;
            }
            let xb = &op.x[first..][..span];
            for l in 0..lanes {
                if HALF {
                    // Channels 0–7 of the block in both halves; pixels
                    // 2j and 2j + 1 in vector j.
                    let Ok(w8) = <&[f32; 8]>::try_from(&wb[l * DIRECT_GROUP..l * DIRECT_GROUP + 8]) else {
                        continue;
                    };
                    let wv = L::load_twice(w8);
                    let xl = if S::BLOCKED {
                        xb
                    } else {
                        &xb[l * lane..][..(npx - 1) * px + 1]
                    };
                    for (j, row) in acc.iter_mut().enumerate() {
                        let (i0, i1) = if S::BLOCKED {
                            (2 * j * px + l * lane, (2 * j + 1) * px + l * lane)
                        } else {
                            (2 * j * px, (2 * j + 1) * px)
                        };
                        row[0] = row[0].mul_add(L::splat2(xl[i0], xl[i1]), wv);
                    }
                    continue;
                }
                let mut wv = [L::zero(); OB];
                for (ob, v) in wv.iter_mut().enumerate() {
                    let at = l * DIRECT_GROUP + ob * BLOCK;
                    *v = L::load(vector(&wb[at..at + BLOCK], 0));
                }
                // Blocked: constant offsets. Planar: channel `l`'s PX
                // values sliced once (constant length when the stride is
                // known), not a bounds check per pixel.
                let xl = if S::BLOCKED {
                    xb
                } else {
                    &xb[l * lane..][..(PX - 1) * px + 1]
                };
                for (j, row) in acc.iter_mut().enumerate() {
                    let xv = L::splat(if S::BLOCKED {
                        xl[j * px + l * lane]
                    } else {
                        xl[j * px]
                    });
                    for (a, wv) in row.iter_mut().zip(&wv) {
                        *a = a.mul_add(xv, *wv);
                    }
                }
            }
        }
    }
    // Stored by value: no reference to `acc` (see `pointwise_tile`), and
    // no `black_box` copy (a 1.5 KiB memmove per call at AVX-512; the
    // direct path ran 8–10 % faster without it at both levels).
    for (o, a) in part.iter_mut().zip(acc) {
        for (v, x) in o.iter_mut().zip(a) {
            x.store(v);
        }
    }
}

/// Runs a depthwise convolution, blocked in and out; false when a buffer
/// is shorter than the shapes need.
pub(crate) fn depthwise<F: MulAdd>(op: &Depthwise<'_>, out: &mut [f32], par: Par<'_>) -> bool {
    let [c, h, w] = op.in_shape;
    let [_, ho, wo] = op.out_shape;
    let blocks = c.div_ceil(BLOCK);
    let taps = op.st.kernel[0] * op.st.kernel[1];
    if op.x.len() < blocks * BLOCK * h * w
        || op.w.len() < blocks * taps * BLOCK
        || op.bias.is_some_and(|b| b.len() < c)
    {
        return false;
    }
    split(blocks, (ho, wo), Layout::Blocked, c, out, None, par, &|p| {
        at_level::<F, _>(op, p);
        true
    })
}

impl Job for Depthwise<'_> {
    #[cfg_attr(not(sld_no_forced_inline), inline(always))]
    fn run<L: Lanes>(&self, p: Part<'_>) {
        if L::WIDE {
            depthwise_part::<L, 8>(self, p)
        } else {
            depthwise_part::<L, 4>(self, p)
        }
    }
}

/// Channel blocks `p.b0..p.b1`, every output row in tiles of PX pixels.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn depthwise_part<L: Lanes, const PX: usize>(op: &Depthwise<'_>, mut p: Part<'_>) {
    let [c, h, w] = op.in_shape;
    let [_, _, wo] = op.out_shape;
    let st = op.st;
    let [kh, kw] = st.kernel;
    let [sh, sw] = st.stride;
    let [dh, dw] = st.dilation;
    let (pt, pl) = (st.padding[0], st.padding[1]);
    let taps = kh * kw;
    // Output columns whose every tap is inside the row: [lo, hi).
    let lo = pl.div_ceil(sw).min(wo);
    let last_tap = (kw - 1) * dw;
    let hi = if w + pl > last_tap {
        ((w + pl - last_tap - 1) / sw + 1).clamp(lo, wo)
    } else {
        lo
    };
    for blk in p.b0..p.b1 {
        let wts = &op.w[blk * taps * BLOCK..(blk + 1) * taps * BLOCK];
        let bias: V = core::array::from_fn(|l| {
            op.bias
                .and_then(|b| b.get(blk * BLOCK + l))
                .copied()
                .unwrap_or(0.0)
        });
        let bias = L::load(&bias);
        let plane = &op.x[blk * h * w * BLOCK..(blk + 1) * h * w * BLOCK];
        let _ = c;
        for oy in p.q0 / wo.max(1)..p.q1 / wo.max(1) {
            // Kernel rows inside the input: iy = oy·sh + ky·dh − pt ∈ [0, h).
            let y0 = (oy * sh) as isize - pt as isize;
            let ky_lo = if y0 >= 0 { 0 } else { ((-y0) as usize).div_ceil(dh) };
            let ky_hi = if y0 >= h as isize {
                0
            } else {
                (((h as isize - 1 - y0) as usize) / dh + 1).min(kh)
            };
            let orow = oy * wo;
            let rows = Rows {
                plane,
                w,
                y0,
                dh,
                ky: (ky_lo, ky_hi),
            };
            // The interior in tiles, the last one overlapping its
            // neighbour to end at `hi` (its shared pixels computed twice,
            // to the same bits), when it holds one; else pixel by pixel.
            let (a, z) = if hi - lo >= PX { (lo, hi) } else { (lo, lo) };
            let mut ox = a;
            while ox < z {
                let start = ox.min(z - PX);
                let x0 = start * sw - pl;
                let acc = match (sw, dw, kw) {
                    (1, 1, 3) => interior_reuse::<L, PX, 3, 1>(&rows, wts, x0),
                    (1, 1, 5) => interior_reuse::<L, PX, 5, 1>(&rows, wts, x0),
                    (1, ..) => interior::<L, PX, 1>(&rows, wts, kw, x0, dw),
                    (2, ..) => interior::<L, PX, 2>(&rows, wts, kw, x0, dw),
                    _ => interior_any::<L, PX>(&rows, wts, kw, x0, dw, sw),
                };
                if let Some(d) = p.out.run(blk, orow + start, PX) {
                    store_run(d, &acc, bias, None, st.activation);
                }
                ox += PX;
            }
            for ox in (0..a).chain(z..wo) {
                // A border pixel: the taps inside the input only.
                let x0 = (ox * sw) as isize - pl as isize;
                let (kx0, kx1) = taps_inside(x0, 1, dw, kw, w);
                let mut acc = L::zero();
                for ky in ky_lo..ky_hi {
                    let iy = (y0 + (ky * dh) as isize) as usize;
                    let row = &plane[iy * w * BLOCK..(iy + 1) * w * BLOCK];
                    for kx in kx0..kx1 {
                        let ix = (x0 + (kx * dw) as isize) as usize;
                        acc = acc.mul_add(L::load(tap(row, ix)), L::load(tap(wts, ky * kw + kx)));
                    }
                }
                if let Some(d) = p.out.run(blk, orow + ox, 1) {
                    store_run(d, &[acc], bias, None, st.activation);
                }
            }
        }
    }
}

/// The input rows of one output row of one channel block: rows
/// `y0 + ky·dh` for `ky` in `ky.0..ky.1`, each `w` pixels of 16 lanes.
struct Rows<'a> {
    plane: &'a [f32],
    w: usize,
    y0: isize,
    dh: usize,
    ky: (usize, usize),
}

/// PX output pixels of stride S whose every tap is inside the row; the
/// first reads input column `x0` at tap 0. Taps in row-major order, each
/// one weight vector against PX input vectors from one slice of constant
/// length (no per-pixel bounds checks).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn interior<L: Lanes, const PX: usize, const S: usize>(
    r: &Rows<'_>,
    wts: &[f32],
    kw: usize,
    x0: usize,
    dw: usize,
) -> [L; PX] {
    let mut acc = [L::zero(); PX];
    for ky in r.ky.0..r.ky.1 {
        let iy = (r.y0 + (ky * r.dh) as isize) as usize;
        let row = &r.plane[iy * r.w * BLOCK..(iy + 1) * r.w * BLOCK];
        for kx in 0..kw {
            let wv = L::load(tap(wts, ky * kw + kx));
            let at = x0 + kx * dw;
            let span = &row[at * BLOCK..(at + (PX - 1) * S + 1) * BLOCK];
            for (j, a) in acc.iter_mut().enumerate() {
                *a = a.mul_add(L::load(tap(span, j * S)), wv);
            }
        }
    }
    // One store after the loop (see `pointwise_tile`).
    core::hint::black_box(acc)
}

/// [`interior`] at stride S, dilation 1 and KW kernel columns: each of
/// the (PX − 1)·S + KW input vectors of a kernel row is loaded once and
/// used for every output it reaches (at stride 1, 40 loads become 12 for
/// PX 8, KW 5: the 5×5 layers went from ~50 to 57–76 GFLOP/s). The sums
/// keep [`interior`]'s order (kernel rows, then columns). Used at stride 1
/// only: the two stride-2 layers read planes that do not fit the caches
/// and measured no faster this way.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn interior_reuse<L: Lanes, const PX: usize, const KW: usize, const S: usize>(
    r: &Rows<'_>,
    wts: &[f32],
    x0: usize,
) -> [L; PX] {
    let mut acc = [L::zero(); PX];
    for ky in r.ky.0..r.ky.1 {
        let iy = (r.y0 + (ky * r.dh) as isize) as usize;
        let row = &r.plane[iy * r.w * BLOCK..(iy + 1) * r.w * BLOCK];
        let mut wv = [L::zero(); KW];
        for (kx, v) in wv.iter_mut().enumerate() {
            *v = L::load(tap(wts, ky * KW + kx));
        }
        let span = &row[x0 * BLOCK..(x0 + (PX - 1) * S + KW) * BLOCK];
        for i in 0..(PX - 1) * S + KW {
            let xv = L::load(tap(span, i));
            for (kx, w) in wv.iter().enumerate() {
                // Output j = (i − kx) / S, when that is whole and in the tile.
                if i >= kx && (i - kx) % S == 0 && (i - kx) / S < PX {
                    let j = (i - kx) / S;
                    acc[j] = acc[j].mul_add(xv, *w);
                }
            }
        }
    }
    // One store after the loop (see `pointwise_tile`).
    core::hint::black_box(acc)
}

/// [`interior`] for a stride known only at run time.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn interior_any<L: Lanes, const PX: usize>(
    r: &Rows<'_>,
    wts: &[f32],
    kw: usize,
    x0: usize,
    dw: usize,
    sw: usize,
) -> [L; PX] {
    let mut acc = [L::zero(); PX];
    for ky in r.ky.0..r.ky.1 {
        let iy = (r.y0 + (ky * r.dh) as isize) as usize;
        let row = &r.plane[iy * r.w * BLOCK..(iy + 1) * r.w * BLOCK];
        for kx in 0..kw {
            let wv = L::load(tap(wts, ky * kw + kx));
            for (j, a) in acc.iter_mut().enumerate() {
                *a = a.mul_add(L::load(tap(row, x0 + kx * dw + j * sw)), wv);
            }
        }
    }
    // One store after the loop (see `pointwise_tile`).
    core::hint::black_box(acc)
}

/// The `i`-th 16 values of `s` (zeros where `s` is too short, which the
/// callers' shape checks rule out).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn vector(s: &[f32], i: usize) -> &V {
    s.get(i * BLOCK..(i + 1) * BLOCK)
        .and_then(|v| <&V>::try_from(v).ok())
        .unwrap_or(&[0.0; BLOCK])
}

/// The `i`-th vector of `s`.
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn tap(s: &[f32], i: usize) -> &V {
    <&V>::try_from(&s[i * BLOCK..(i + 1) * BLOCK]).unwrap_or(&[0.0; BLOCK])
}

/// `out` (PX pixels of one block) = `act(acc + bias + residual)`, the activation
/// matched once for the run (plain loops: a closure would be compiled
/// outside the kernel's `#[target_feature]` copy).
#[cfg_attr(not(sld_no_forced_inline), inline(always))]
fn store_run<L: Lanes, const PX: usize>(
    out: &mut [f32],
    acc: &[L; PX],
    bias: L,
    residual: Option<&[f32]>,
    act: Activation,
) {
    macro_rules! each {
        (|$v:ident, $d:ident| $body:expr) => {
            for (j, (d, a)) in out.chunks_exact_mut(BLOCK).zip(acc).enumerate() {
                if let Ok($d) = <&mut V>::try_from(d) {
                    let v = a.add(bias);
                    let $v = match residual {
                        Some(r) => v.add(L::load(vector(r, j))),
                        None => v,
                    };
                    $body;
                }
            }
        };
    }
    match act {
        Activation::None => each!(|v, d| v.store(d)),
        Activation::Relu => each!(|v, d| v.relu().store(d)),
        Activation::Relu6 => each!(|v, d| v.relu6().store(d)),
        Activation::Silu => each!(|v, d| {
            v.store(d);
            act.apply_all(d)
        }),
    }
}
