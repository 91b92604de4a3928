//! A deterministic reservoir of a group's training values (Algorithm R), for the distributions that
//! need the values themselves (KDE, Beta, auto selection). Up to its capacity it holds every value in
//! input order; beyond it, a uniform sample chosen by the seeded generator, so a fit is repeatable.

use serde::{Deserialize, Serialize};

use super::rng::Rng;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservoir {
    pub values: Vec<f64>,
    /// Values offered so far (kept or not).
    pub seen: u64,
}

impl Reservoir {
    /// Continues a reservoir that sampled `seen` values into `values` (e.g. a stored model's sample).
    pub fn resume(values: Vec<f64>, seen: u64) -> Reservoir {
        Reservoir { values, seen }
    }

    #[inline]
    pub fn push(&mut self, x: f64, cap: usize, rng: &mut Rng) {
        self.seen += 1;
        if self.values.len() < cap {
            self.values.push(x);
        } else if cap > 0 {
            let j = rng.below(self.seen);
            if (j as usize) < cap {
                self.values[j as usize] = x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_all_below_capacity_then_samples() {
        let mut rng = Rng::new(1);
        let mut r = Reservoir::default();
        (0..10).for_each(|i| r.push(i as f64, 100, &mut rng));
        assert_eq!(r.values, (0..10).map(|i| i as f64).collect::<Vec<_>>());
        (10..10_000).for_each(|i| r.push(i as f64, 100, &mut rng));
        assert_eq!(r.values.len(), 100);
        assert_eq!(r.seen, 10_000);
        let late = r.values.iter().filter(|v| **v >= 5000.0).count();
        assert!((30..70).contains(&late), "uniform over the stream: {late}");
    }
}
