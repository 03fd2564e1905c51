//! AdamW (Loshchilov & Hutter) with its state exposed, so checkpoints hold
//! the moments and `--resume` continues exactly (Candle's `AdamW` keeps
//! them private).

use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

/// Hyper-parameters (SLD*: lr 1e-3, betas 0.9/0.999, eps 1e-4, decay 0.01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWParams {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-4,
            weight_decay: 0.01,
        }
    }
}

/// Optimiser state over named variables.
pub struct AdamW {
    /// `(name, variable, first moment, second moment)`.
    pub vars: Vec<(String, Var, Tensor, Tensor)>,
    /// Steps taken.
    pub step: u64,
    /// Hyper-parameters (the learning rate may be changed between steps).
    pub params: AdamWParams,
}

impl AdamW {
    /// Fresh state (zero moments) for `vars`.
    pub fn new(vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        let vars = vars
            .into_iter()
            .map(|(n, v)| {
                let z = v.as_tensor().zeros_like()?;
                Ok((n, v, z.clone(), z))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            vars,
            step: 0,
            params,
        })
    }

    /// One step on the gradient of `loss`. Returns the largest absolute
    /// gradient entry (for the divergence guard).
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<f32> {
        let grads = loss.backward()?;
        self.apply(&grads)
    }

    /// One step with gradients already computed (several optimisers can
    /// share one backward pass, e.g. a shared backbone and one scene's
    /// head). Variables without a gradient are left alone, moments and
    /// weight decay included. Returns the largest absolute gradient entry.
    pub fn apply(&mut self, grads: &GradStore) -> Result<f32> {
        self.step += 1;
        let p = self.params;
        let t = self.step as i32;
        let bc1 = 1.0 - p.beta1.powi(t);
        let bc2 = 1.0 - p.beta2.powi(t);
        let mut gmax = 0f32;
        for (_, var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            gmax = gmax.max(g.abs()?.max_all()?.to_scalar::<f32>()?);
            *m = ((&*m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            *v = ((&*v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let mhat = (&*m / bc1)?;
            let vhat = (&*v / bc2)?;
            let update = (mhat / (vhat.sqrt()? + p.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - p.lr * p.weight_decay))?;
            var.set(&(decayed - (update * p.lr)?)?)?;
        }
        Ok(gmax)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Minimises ‖x − c‖² and matches a hand-computed first step.
    #[test]
    fn first_step_and_convergence() {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![1f32, -2.0], 2, &dev).unwrap();
        let c = Tensor::new(&[3f32, 1.0], &dev).unwrap();
        let params = AdamWParams {
            lr: 0.1,
            eps: 1e-8,
            weight_decay: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], params).unwrap();
        let loss = (x.as_tensor() - &c).unwrap().sqr().unwrap().sum_all().unwrap();
        opt.backward_step(&loss).unwrap();
        // First Adam step moves each coordinate by lr·sign(grad).
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!((v[0] - 1.1).abs() < 1e-5 && (v[1] + 1.9).abs() < 1e-5, "{v:?}");
        for _ in 0..500 {
            let loss = (x.as_tensor() - &c).unwrap().sqr().unwrap().sum_all().unwrap();
            opt.backward_step(&loss).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!((v[0] - 3.0).abs() < 0.05 && (v[1] - 1.0).abs() < 0.05, "{v:?}");
    }

    /// A shared backward pass: the optimiser of the variable in the loss
    /// moves it; a variable outside the loss keeps its value and moments
    /// (a scene head whose scene was not in the batch).
    #[test]
    fn apply_leaves_variables_outside_the_loss_alone() {
        let dev = Device::Cpu;
        let x = Var::from_vec(vec![1f32], 1, &dev).unwrap();
        let y = Var::from_vec(vec![5f32], 1, &dev).unwrap();
        let mut ox = AdamW::new(vec![("x".into(), x.clone())], AdamWParams::default()).unwrap();
        let mut oy = AdamW::new(vec![("y".into(), y.clone())], AdamWParams::default()).unwrap();
        let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        ox.apply(&grads).unwrap();
        oy.apply(&grads).unwrap();
        assert!(x.as_tensor().to_vec1::<f32>().unwrap()[0] < 1.0);
        assert_eq!(y.as_tensor().to_vec1::<f32>().unwrap(), vec![5.0]);
        assert_eq!(oy.vars[0].2.to_vec1::<f32>().unwrap(), vec![0.0]);
    }
}
