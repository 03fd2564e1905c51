//! Procedural surface textures: albedo (linear RGB in `[0, 1]`) as a pure
//! function of a material and a 2D surface coordinate in metres.
//!
//! Every texture is built from integer hashing, so it is deterministic,
//! needs no storage and is aperiodic: a patch of wall looks like no other
//! patch, which is what a landmark detector needs to learn.

use sld_core::rng::SplitMix64;

/// Linear RGB, each channel in `[0, 1]`.
pub type Rgb = [f32; 3];

/// The pattern family of a material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Mottled plaster with dark veins (fractal noise).
    Plaster,
    /// Bricks or tiles: staggered rows, mortar lines, per-brick colour.
    Bricks,
    /// Wooden planks with grain.
    Wood,
    /// Voronoi mosaic, one palette colour per cell.
    Mosaic,
    /// A poster: large colour blobs, stripes and dots (very distinctive).
    Poster,
    /// Floor tiles in a checker with noise.
    Checker,
}

/// A material: pattern, palette and scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Material {
    /// Pattern family.
    pub pattern: Pattern,
    /// Three palette colours (linear RGB).
    pub palette: [Rgb; 3],
    /// Feature size, metres (brick length, plank width, cell size…).
    pub scale: f32,
    /// Seed of the material's hash streams.
    pub seed: u32,
}

impl Material {
    /// A random material of the given pattern.
    pub fn random(pattern: Pattern, rng: &mut SplitMix64) -> Self {
        let mut colour = || {
            let h = rng.unit_f64() as f32;
            let s = 0.2 + 0.7 * rng.unit_f64() as f32;
            let v = 0.25 + 0.7 * rng.unit_f64() as f32;
            hsv(h, s, v)
        };
        let palette = [colour(), colour(), colour()];
        let scale = match pattern {
            Pattern::Plaster => 0.3 + 0.5 * rng.unit_f64() as f32,
            Pattern::Bricks => 0.2 + 0.15 * rng.unit_f64() as f32,
            Pattern::Wood => 0.1 + 0.1 * rng.unit_f64() as f32,
            Pattern::Mosaic => 0.05 + 0.08 * rng.unit_f64() as f32,
            Pattern::Poster => 0.1 + 0.15 * rng.unit_f64() as f32,
            Pattern::Checker => 0.3 + 0.3 * rng.unit_f64() as f32,
        };
        Self {
            pattern,
            palette,
            scale,
            seed: rng.next_u64() as u32,
        }
    }

    /// Albedo at surface coordinate `(u, v)` (metres).
    pub fn albedo(&self, u: f32, v: f32) -> Rgb {
        let s = self.seed;
        let [a, b, c] = self.palette;
        let (x, y) = (u / self.scale, v / self.scale);
        // Fine detail shared by all patterns: ~1 cm grain.
        let grain = 0.85 + 0.3 * value_noise(u * 60.0, v * 60.0, s ^ 0x9e37);
        let rgb = match self.pattern {
            Pattern::Plaster => {
                let n = fbm(x, y, s, 5);
                let vein = (1.0 - (fbm(x * 0.7 + 5.1, y * 0.7, s ^ 7, 4) * 12.0).sin().abs()).powi(6);
                mix(mix(a, b, n), c, vein * 0.8)
            }
            Pattern::Bricks => {
                let row = (y * 2.0).floor();
                let xs = x + if row as i32 % 2 == 0 { 0.0 } else { 0.5 };
                let col = xs.floor();
                let (fx, fy) = (xs - col, y * 2.0 - row);
                let mortar = fx < 0.04 || fy < 0.08;
                if mortar {
                    scale(c, 0.6 + 0.2 * value_noise(u * 40.0, v * 40.0, s))
                } else {
                    let t = hash2(col as i32, row as i32, s);
                    let base = mix(a, b, t);
                    scale(base, 0.7 + 0.5 * fbm(x * 4.0, y * 4.0, s ^ 3, 3))
                }
            }
            Pattern::Wood => {
                let plank = x.floor();
                let along = y + 3.7 * hash2(plank as i32, 0, s);
                let t = hash2(plank as i32, 1, s);
                let grain_l =
                    ((along * 7.0 + 2.5 * fbm(x * 3.0, along * 0.6, s ^ 5, 3)) * 6.0).sin() * 0.5 + 0.5;
                let edge = (x - plank) < 0.03;
                let base = mix(a, b, t);
                if edge {
                    scale(base, 0.35)
                } else {
                    mix(base, scale(base, 0.6), grain_l * 0.7)
                }
            }
            Pattern::Mosaic => {
                let (id, d1, d2) = worley(x, y, s);
                let t = hash1(id, s);
                let base = if t < 0.4 {
                    a
                } else if t < 0.75 {
                    b
                } else {
                    c
                };
                let edge = ((d2 - d1) * 8.0).min(1.0);
                scale(base, (0.3 + 0.7 * edge) * (0.75 + 0.5 * hash1(id, s ^ 11)))
            }
            Pattern::Poster => {
                let blob = fbm(x * 0.5, y * 0.5, s, 3);
                let stripes = ((x * 1.3 + y * 0.7 + 3.0 * fbm(x * 0.3, y * 0.3, s ^ 9, 2)) * 3.0).sin();
                let (id, d1, _) = worley(x * 1.5, y * 1.5, s ^ 13);
                let dot = d1 < 0.18 && hash1(id, s) < 0.5;
                let mut col = if blob > 0.55 { a } else { b };
                if stripes > 0.6 {
                    col = mix(col, c, 0.8);
                }
                if dot {
                    col = hsv(hash1(id, s ^ 17), 0.8, 0.9);
                }
                col
            }
            Pattern::Checker => {
                let (cx, cy) = (x.floor() as i32, y.floor() as i32);
                let base = if (cx + cy) & 1 == 0 { a } else { b };
                let stain = fbm(x * 0.8, y * 0.8, s ^ 21, 4);
                let line = (x - x.floor()) < 0.02 || (y - y.floor()) < 0.02;
                if line {
                    scale(c, 0.5)
                } else {
                    scale(base, 0.6 + 0.6 * stain)
                }
            }
        };
        let [r, g, b] = rgb;
        [
            (r * grain).clamp(0.0, 1.0),
            (g * grain).clamp(0.0, 1.0),
            (b * grain).clamp(0.0, 1.0),
        ]
    }
}

/// HSV (each in `[0, 1]`) to linear RGB.
pub fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h6 = (h.fract() + 1.0).fract() * 6.0;
    let k = |n: f32| {
        let k = (n + h6) % 6.0;
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    };
    [k(5.0), k(3.0), k(1.0)]
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(a: Rgb, k: f32) -> Rgb {
    [a[0] * k, a[1] * k, a[2] * k]
}

/// Hash of an integer lattice point to `[0, 1)`.
#[inline]
pub fn hash2(x: i32, y: i32, seed: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343)
        ^ (y as u32).wrapping_mul(0xd816_3841)
        ^ seed.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297a_2d39);
    h ^= h >> 15;
    (h >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

#[inline]
fn hash1(id: u32, seed: u32) -> f32 {
    hash2(id as i32, 0x5bd1_e995u32 as i32, seed)
}

/// Smooth value noise in `[0, 1]` on a unit lattice.
#[inline]
pub fn value_noise(x: f32, y: f32, seed: u32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (ix, iy) = (xf as i32, yf as i32);
    let (tx, ty) = (x - xf, y - yf);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = hash2(ix, iy, seed);
    let b = hash2(ix + 1, iy, seed);
    let c = hash2(ix, iy + 1, seed);
    let d = hash2(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// Fractal sum of `octaves` value-noise layers, normalised to `[0, 1]`.
pub fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * value_noise(x * f, y * f, seed.wrapping_add(o * 101));
        norm += amp;
        amp *= 0.5;
        f *= 2.03;
    }
    sum / norm
}

/// Jittered-grid Voronoi: the id of the nearest feature point and the
/// distances to the nearest and second-nearest (lattice units).
fn worley(x: f32, y: f32, seed: u32) -> (u32, f32, f32) {
    let (ix, iy) = (x.floor() as i32, y.floor() as i32);
    let (mut d1, mut d2, mut id) = (f32::MAX, f32::MAX, 0u32);
    for dy in -1..=1 {
        for dx in -1..=1 {
            let (cx, cy) = (ix + dx, iy + dy);
            let px = cx as f32 + hash2(cx, cy, seed);
            let py = cy as f32 + hash2(cx, cy, seed ^ 0x68e3_1da4);
            let d = ((px - x) * (px - x) + (py - y) * (py - y)).sqrt();
            if d < d1 {
                d2 = d1;
                d1 = d;
                id = (cx as u32).wrapping_mul(73_856_093) ^ (cy as u32).wrapping_mul(19_349_663);
            } else if d < d2 {
                d2 = d;
            }
        }
    }
    (id, d1, d2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn albedo_is_bounded_deterministic_and_varied() {
        let mut rng = SplitMix64::new(3);
        for p in [
            Pattern::Plaster,
            Pattern::Bricks,
            Pattern::Wood,
            Pattern::Mosaic,
            Pattern::Poster,
            Pattern::Checker,
        ] {
            let m = Material::random(p, &mut rng);
            let mut lum = Vec::new();
            for i in 0..400 {
                let (u, v) = (i as f32 * 0.013, (i * 7 % 13) as f32 * 0.029);
                let c = m.albedo(u, v);
                assert!(c.iter().all(|x| (0.0..=1.0).contains(x)), "{p:?} {c:?}");
                assert_eq!(c, m.albedo(u, v));
                lum.push(c[0] + c[1] + c[2]);
            }
            let mean = lum.iter().sum::<f32>() / lum.len() as f32;
            let var = lum.iter().map(|l| (l - mean) * (l - mean)).sum::<f32>() / lum.len() as f32;
            assert!(var > 1e-3, "{p:?} is flat (variance {var})");
        }
    }
}
