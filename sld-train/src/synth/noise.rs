//! Images with nothing to recognise, for checking that a localiser says
//! "no pose" rather than inventing one (the reliability gate's negatives).

use sld_core::rng::SplitMix64;

/// `n` RGB images of `w × h` (row-major, 3 bytes per pixel), four kinds in
/// turn: white noise; blotches (noise at 1/8 resolution, nearest
/// neighbour); large patches (1/32); flat grey with faint noise (a lens
/// cap, a blank wall). Deterministic for a given `seed`.
pub fn noise_images(n: usize, w: usize, h: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let mut img = vec![0u8; w * h * 3];
            match i % 4 {
                0 => img.iter_mut().for_each(|v| *v = rng.below(256) as u8),
                k @ (1 | 2) => {
                    let f = if k == 1 { 8 } else { 32 };
                    let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
                    let small: Vec<u8> = (0..sw * sh * 3).map(|_| rng.below(256) as u8).collect();
                    for (p, px) in img.chunks_exact_mut(3).enumerate() {
                        let (x, y) = (p % w, p / w);
                        let s = ((y / f) * sw + x / f) * 3;
                        px.copy_from_slice(&small[s..s + 3]);
                    }
                }
                _ => {
                    let base = rng.uniform(40.0, 200.0);
                    img.iter_mut()
                        .for_each(|v| *v = (base + 4.0 * rng.gauss()).clamp(0.0, 255.0) as u8);
                }
            }
            img
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_the_intended_structure() {
        let imgs = noise_images(4, 64, 64, 1);
        assert!(imgs.iter().all(|i| i.len() == 64 * 64 * 3));
        // Blotches are constant over 8×8 cells; flat grey stays near its mean.
        let b = &imgs[1];
        assert_eq!(b[0..3], b[7 * 3..7 * 3 + 3]);
        assert_eq!(b[0..3], b[(7 * 64) * 3..(7 * 64) * 3 + 3]);
        let g = &imgs[3];
        let mean = g.iter().map(|&v| v as f64).sum::<f64>() / g.len() as f64;
        assert!(g.iter().all(|&v| (v as f64 - mean).abs() < 30.0));
        assert_eq!(noise_images(4, 64, 64, 1), imgs);
    }
}
