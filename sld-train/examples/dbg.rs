use sld_core::pnp::*;
use sld_train::pnp_cli;
fn main() {
    let cases = pnp_cli::read_cases(std::path::Path::new("bench/out/N60-o75-s4.json")).unwrap();
    for i in [8usize, 43, 53, 65, 75] {
        let (cam, c) = &cases[i];
        for (rr, ri) in [(4, 50), (0, 0)] {
            let mut o = PnpOptions::default();
            o.refine_rounds = rr; o.refine_iterations = ri;
            let mut s = PnpSolver::with_capacity(o, 60);
            let r = s.solve(&c.points2d, &c.points3d, c.confidence.as_deref(), cam, None).unwrap();
            let rows = r.pose.to_rows();
            // msac cost
            let mut cost = 0.0; let mut inl = 0;
            for (p2, p3) in c.points2d.iter().zip(&c.points3d) {
                let pc: Vec<f64> = (0..3).map(|k| rows[k][0]*p3[0]+rows[k][1]*p3[1]+rows[k][2]*p3[2]+rows[k][3]).collect();
                let u = cam.fx*pc[0]/pc[2]+cam.cx; let v = cam.fy*pc[1]/pc[2]+cam.cy;
                let e2 = (u-p2[0]).powi(2)+(v-p2[1]).powi(2);
                if pc[2] > 0.0 && e2 < 64.0 { cost += e2; inl += 1; } else { cost += 64.0; }
            }
            println!("case {i} rounds {rr}: inliers {} iters {} lo {} msac {cost:.1} ({inl})", r.inliers, r.iterations, r.local_optimizations);
        }
    }
}
