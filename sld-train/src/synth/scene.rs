//! Scene geometry: one box-shaped room (seen from inside) holding
//! axis-aligned boxes (furniture, and thin posters/frames on the walls),
//! each face with a material; lights per recording session.
//!
//! World frame: metres, `z` up, floor at `z = 0`, room `[0, sx] × [0, sy] × [0, sz]`.

use sld_core::rng::SplitMix64;

use super::texture::{hsv, Material, Pattern, Rgb};

/// An axis-aligned box.
#[derive(Clone, Debug, PartialEq)]
pub struct Aabb {
    /// Minimum corner, metres.
    pub min: [f64; 3],
    /// Maximum corner, metres.
    pub max: [f64; 3],
}

/// A surface hit by a ray.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Ray parameter (distance in units of the ray direction's length).
    pub t: f64,
    /// Unit surface normal facing the ray's origin side.
    pub normal: [f64; 3],
    /// Material index into [`Scene::materials`].
    pub material: usize,
    /// Surface coordinates on the face, metres.
    pub uv: [f32; 2],
}

/// A point light.
#[derive(Clone, Debug, PartialEq)]
pub struct Light {
    /// Position, metres.
    pub position: [f64; 3],
    /// Colour × intensity (linear RGB radiance at 1 m).
    pub power: Rgb,
}

/// Illumination of one recording session.
#[derive(Clone, Debug, PartialEq)]
pub struct Lighting {
    /// Ambient light (linear RGB).
    pub ambient: Rgb,
    /// Lights switched on.
    pub lights: Vec<Light>,
    /// Camera exposure multiplier.
    pub exposure: f32,
}

/// A synthetic room.
#[derive(Clone, Debug)]
pub struct Scene {
    /// Room size, metres.
    pub size: [f64; 3],
    /// Boxes inside the room.
    pub boxes: Vec<Aabb>,
    /// Materials: 6 per room face (−x, +x, −y, +y, floor, ceiling), then 1 per box.
    pub materials: Vec<Material>,
    /// Material index of each room face (6) then each box.
    pub face_material: Vec<usize>,
    /// Box indices that stand on the floor (obstacles for the camera path).
    pub furniture: Vec<usize>,
}

impl Scene {
    /// A random furnished room, deterministic for `seed`.
    pub fn random(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x51d_5ce7e);
        let size = [
            rng.uniform(6.0, 9.0),
            rng.uniform(5.0, 7.5),
            rng.uniform(2.7, 3.3),
        ];
        let mut materials = Vec::new();
        let mut face_material = Vec::new();
        let wall_patterns = [
            Pattern::Plaster,
            Pattern::Bricks,
            Pattern::Mosaic,
            Pattern::Plaster,
        ];
        for (i, p) in wall_patterns.iter().enumerate() {
            let p = if rng.unit_f64() < 0.3 {
                [Pattern::Bricks, Pattern::Plaster, Pattern::Wood][i % 3]
            } else {
                *p
            };
            materials.push(Material::random(p, &mut rng));
            face_material.push(materials.len() - 1);
        }
        let floor = if rng.unit_f64() < 0.5 {
            Pattern::Wood
        } else {
            Pattern::Checker
        };
        materials.push(Material::random(floor, &mut rng));
        face_material.push(materials.len() - 1);
        materials.push(Material::random(Pattern::Plaster, &mut rng));
        face_material.push(materials.len() - 1);

        let mut boxes = Vec::new();
        let mut furniture = Vec::new();
        // Furniture on the floor, not overlapping, leaving the centre walkable.
        let n_furniture = 6 + rng.below(5);
        let mut tries = 0;
        while furniture.len() < n_furniture && tries < 500 {
            tries += 1;
            let w = rng.uniform(0.4, 1.8);
            let d = rng.uniform(0.4, 1.0);
            let h = rng.uniform(0.4, 2.0);
            let (w, d) = if rng.unit_f64() < 0.5 { (w, d) } else { (d, w) };
            // Against a wall or free-standing.
            let (x0, y0) = match rng.below(5) {
                0 => (rng.uniform(0.0, size[0] - w), 0.02),
                1 => (rng.uniform(0.0, size[0] - w), size[1] - d - 0.02),
                2 => (0.02, rng.uniform(0.0, size[1] - d)),
                3 => (size[0] - w - 0.02, rng.uniform(0.0, size[1] - d)),
                _ => (
                    rng.uniform(1.0, size[0] - w - 1.0),
                    rng.uniform(1.0, size[1] - d - 1.0),
                ),
            };
            let b = Aabb {
                min: [x0, y0, 0.0],
                max: [x0 + w, y0 + d, h],
            };
            let clear = boxes.iter().all(|o: &Aabb| {
                b.max[0] + 0.3 < o.min[0]
                    || o.max[0] + 0.3 < b.min[0]
                    || b.max[1] + 0.3 < o.min[1]
                    || o.max[1] + 0.3 < b.min[1]
            });
            if !clear {
                continue;
            }
            let p = [Pattern::Wood, Pattern::Mosaic, Pattern::Plaster, Pattern::Checker][rng.below(4)];
            materials.push(Material::random(p, &mut rng));
            face_material.push(materials.len() - 1);
            furniture.push(boxes.len());
            boxes.push(b);
        }
        // Posters and frames on the walls: thin boxes, 1 cm proud of the wall.
        let n_posters = 8 + rng.below(6);
        for _ in 0..n_posters {
            let w = rng.uniform(0.4, 1.4);
            let h = rng.uniform(0.4, 1.1);
            let z0 = rng.uniform(0.9, (size[2] - h - 0.2).max(1.0));
            let wall = rng.below(4);
            let b = match wall {
                0 | 1 => {
                    let x0 = rng.uniform(0.2, size[0] - w - 0.2);
                    let y = if wall == 0 { 0.0 } else { size[1] - 0.01 };
                    Aabb {
                        min: [x0, y, z0],
                        max: [x0 + w, y + 0.01, z0 + h],
                    }
                }
                _ => {
                    let y0 = rng.uniform(0.2, size[1] - w - 0.2);
                    let x = if wall == 2 { 0.0 } else { size[0] - 0.01 };
                    Aabb {
                        min: [x, y0, z0],
                        max: [x + 0.01, y0 + w, z0 + h],
                    }
                }
            };
            let p = if rng.unit_f64() < 0.7 {
                Pattern::Poster
            } else {
                Pattern::Mosaic
            };
            materials.push(Material::random(p, &mut rng));
            face_material.push(materials.len() - 1);
            boxes.push(b);
        }
        Self {
            size,
            boxes,
            materials,
            face_material,
            furniture,
        }
    }

    /// Lighting of session `k` of `n`: each session differs in ambient
    /// level and colour, which ceiling lights are on, their colour and
    /// power, and exposure. Session 0 is always well lit.
    pub fn lighting(&self, seed: u64, session: usize) -> Lighting {
        let mut rng = SplitMix64::new(seed ^ 0x1197_ab5e ^ (session as u64).wrapping_mul(0x9e37_79b9));
        let [sx, sy, sz] = self.size;
        let daylight = session == 0 || rng.unit_f64() < 0.5;
        let ambient = if daylight {
            let warm = rng.uniform(-0.1, 0.1) as f32;
            let a = rng.uniform(0.25, 0.45) as f32;
            [a * (1.0 + warm), a, a * (1.0 - warm)]
        } else {
            let a = rng.uniform(0.05, 0.15) as f32;
            [a, a * 0.95, a * 1.1]
        };
        let mut lights = Vec::new();
        let n = 2 + rng.below(3);
        for i in 0..n {
            if session > 0 && i > 0 && rng.unit_f64() < 0.35 {
                continue; // switched off
            }
            let tint = hsv(rng.uniform(0.05, 0.15) as f32, rng.uniform(0.0, 0.45) as f32, 1.0);
            let p = rng.uniform(2.0, 5.0) as f32;
            lights.push(Light {
                position: [
                    rng.uniform(0.8, sx - 0.8),
                    rng.uniform(0.8, sy - 0.8),
                    sz - rng.uniform(0.1, 0.6),
                ],
                power: [tint[0] * p, tint[1] * p, tint[2] * p],
            });
        }
        Lighting {
            ambient,
            lights,
            exposure: rng.uniform(0.8, 1.2) as f32,
        }
    }

    /// Nearest hit of the ray `o + t·d` with `t > t_min`, if any (rays
    /// starting inside the room always hit something).
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3], t_min: f64) -> Option<Hit> {
        // Room: leave through the nearest far face.
        let mut best: Option<Hit> = None;
        let mut t_best = f64::INFINITY;
        for a in 0..3 {
            if d[a] == 0.0 {
                continue;
            }
            let (plane, face) = if d[a] > 0.0 {
                (self.size[a], 2 * a + 1)
            } else {
                (0.0, 2 * a)
            };
            let t = (plane - o[a]) / d[a];
            if t > t_min && t < t_best {
                t_best = t;
                let mut normal = [0.0; 3];
                normal[a] = if d[a] > 0.0 { -1.0 } else { 1.0 };
                best = Some(self.hit_on_face(t, normal, self.face_material[face], o, d, a));
            }
        }
        for (i, b) in self.boxes.iter().enumerate() {
            if let Some((t, axis, sign)) = slab(b, o, d, t_min, t_best) {
                t_best = t;
                let mut normal = [0.0; 3];
                normal[axis] = sign;
                best = Some(self.hit_on_face(t, normal, self.face_material[6 + i], o, d, axis));
            }
        }
        best
    }

    fn hit_on_face(
        &self,
        t: f64,
        normal: [f64; 3],
        material: usize,
        o: [f64; 3],
        d: [f64; 3],
        axis: usize,
    ) -> Hit {
        let p = [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]];
        // The two in-plane coordinates; an offset per axis and side keeps
        // faces sharing a material from showing the same patch.
        let (a, b) = match axis {
            0 => (p[1], p[2]),
            1 => (p[0], p[2]),
            _ => (p[0], p[1]),
        };
        let off = if normal[axis] > 0.0 { 17.0 } else { 0.0 } + axis as f64 * 41.0;
        Hit {
            t,
            normal,
            material,
            uv: [(a + off) as f32, (b + off * 0.5) as f32],
        }
    }

    /// True when a piece of furniture blocks the segment from `p` to `q`
    /// (wall posters are 1 cm thin and cast no shadow worth the test).
    pub fn occluded(&self, p: [f64; 3], q: [f64; 3]) -> bool {
        let d = [q[0] - p[0], q[1] - p[1], q[2] - p[2]];
        self.furniture
            .iter()
            .any(|&i| slab(&self.boxes[i], p, d, 1e-4, 1.0 - 1e-4).is_some())
    }
}

/// Ray–box slab test: nearest entry `t` in `(t_min, t_max)` with the axis
/// and outward normal sign of the entered face.
fn slab(b: &Aabb, o: [f64; 3], d: [f64; 3], t_min: f64, t_max: f64) -> Option<(f64, usize, f64)> {
    let (mut t0, mut t1) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut axis = 0;
    let mut sign = 0.0;
    for a in 0..3 {
        if d[a] == 0.0 {
            if o[a] < b.min[a] || o[a] > b.max[a] {
                return None;
            }
            continue;
        }
        let inv = 1.0 / d[a];
        let (mut ta, mut tb) = ((b.min[a] - o[a]) * inv, (b.max[a] - o[a]) * inv);
        let mut s = -1.0;
        if ta > tb {
            std::mem::swap(&mut ta, &mut tb);
            s = 1.0;
        }
        if ta > t0 {
            t0 = ta;
            axis = a;
            sign = s;
        }
        t1 = t1.min(tb);
    }
    (t0 <= t1 && t0 > t_min && t0 < t_max).then_some((t0, axis, sign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rays_hit_the_room_where_the_planes_are() {
        let s = Scene {
            size: [4.0, 3.0, 2.5],
            boxes: vec![Aabb {
                min: [2.0, 1.0, 0.0],
                max: [3.0, 2.0, 1.0],
            }],
            materials: vec![Material::random(Pattern::Plaster, &mut SplitMix64::new(1))],
            face_material: vec![0; 7],
            furniture: vec![0],
        };
        // Straight up from (1, 1, 1): ceiling at t = 1.5, normal down.
        let h = s.intersect([1.0, 1.0, 1.0], [0.0, 0.0, 1.0], 1e-9).unwrap();
        assert!((h.t - 1.5).abs() < 1e-12 && h.normal == [0.0, 0.0, -1.0]);
        // Along +x at z = 0.5 through the box: enters at x = 2, normal −x.
        let h = s.intersect([0.5, 1.5, 0.5], [1.0, 0.0, 0.0], 1e-9).unwrap();
        assert!((h.t - 1.5).abs() < 1e-12 && h.normal == [-1.0, 0.0, 0.0]);
        // Above the box: reaches the far wall x = 4 at t = 3.5.
        let h = s.intersect([0.5, 1.5, 1.5], [1.0, 0.0, 0.0], 1e-9).unwrap();
        assert!((h.t - 3.5).abs() < 1e-12 && h.normal == [-1.0, 0.0, 0.0]);
        // Diagonal down onto the floor: z = 1 − t·0.5 → t = 2.
        let h = s.intersect([0.5, 0.5, 1.0], [0.1, 0.1, -0.5], 1e-9).unwrap();
        assert!((h.t - 2.0).abs() < 1e-12 && h.normal == [0.0, 0.0, 1.0]);
        assert!(s.occluded([0.5, 1.5, 0.5], [3.5, 1.5, 0.5]));
        assert!(!s.occluded([0.5, 1.5, 1.5], [3.5, 1.5, 1.5]));
    }
}
