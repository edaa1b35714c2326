//! The random draws every part of the simulation shares: uniform numbers, coin flips,
//! log-normal durations and weighted choices.
//!
//! All randomness comes from the generator's one seeded `StdRng`, in program order; these
//! helpers only name the distributions so the simulation reads as intent ("a log-normal delay
//! with median 3 h") rather than arithmetic.

use rand::Rng;
use rand_distr::StandardNormal;

use super::Generator;

impl Generator {
    /// A uniform number in `[0, 1)`.
    pub(super) fn unif(&mut self) -> f64 {
        self.rng.gen()
    }

    /// `true` with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.gen::<f64>() < p
    }

    /// Log-normal duration in ms with the given median (ms) and sigma.
    pub(super) fn lognormal(&mut self, median_ms: f64, sigma: f64) -> i64 {
        let z: f64 = self.rng.sample(StandardNormal);
        (median_ms * (sigma * z).exp()).min(1e15) as i64
    }
}

/// An index into `w`, drawn with probability proportional to its weight.
pub(super) fn pick_weighted<R: Rng>(rng: &mut R, w: &[u32]) -> usize {
    let total: u32 = w.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (i, &wi) in w.iter().enumerate() {
        if x < wi {
            return i;
        }
        x -= wi;
    }
    w.len() - 1
}
