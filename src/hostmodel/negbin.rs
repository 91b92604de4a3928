//! The negative-binomial count distribution of the per-entity model: upper-tail probabilities and the
//! lowest outlying count for a threshold.
//!
//! Parametrised by its mean `mu` and over-dispersion `phi` (variance `mu + phi * mu^2`; `phi = 0` is
//! Poisson, `size = 1/phi`). With `q = mu / (size + mu)`:
//!
//! ```text
//! P(X = k)  = Γ(k + size) / (Γ(size) k!) (1 - q)^size q^k
//! P(X >= k) = I_q(k, size)                       (regularised incomplete beta, k >= 1)
//! P(X >= k) = P(k, mu)                           (regularised lower incomplete gamma, Poisson)
//! ```

use statrs::function::beta::beta_reg;
use statrs::function::gamma::{gamma_lr, ln_gamma};

/// Below this over-dispersion the model is treated as Poisson.
pub const POISSON_PHI: f64 = 1e-9;

/// The lowest outlying count `k` of a distribution, `P(X >= k)` and `P(X = k)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boundary {
    pub k: f64,
    pub tail: f64,
    pub pmf: f64,
}

/// A negative-binomial (or Poisson) count distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NegBin {
    pub mu: f64,
    pub phi: f64,
}

impl NegBin {
    pub fn new(mu: f64, phi: f64) -> NegBin {
        NegBin {
            mu: mu.max(0.0),
            phi: phi.max(0.0),
        }
    }

    pub fn variance(&self) -> f64 {
        self.mu + self.phi * self.mu * self.mu
    }

    fn is_poisson(&self) -> bool {
        self.phi < POISSON_PHI
    }

    /// `P(X >= x)`; a fractional `x` counts as the next integer.
    pub fn upper_tail(&self, x: f64) -> f64 {
        let k = x.ceil();
        if k <= 0.0 || x.is_nan() {
            return 1.0;
        }
        if self.mu <= 0.0 {
            return 0.0;
        }
        if !k.is_finite() {
            return 0.0;
        }
        let p = if self.is_poisson() {
            gamma_lr(k, self.mu)
        } else {
            let size = 1.0 / self.phi;
            beta_reg(k, size, self.mu / (size + self.mu))
        };
        p.clamp(0.0, 1.0)
    }

    /// `ln P(X = k)` for an integer `k >= 0`.
    pub fn ln_pmf(&self, k: f64) -> f64 {
        if self.mu <= 0.0 {
            return if k == 0.0 { 0.0 } else { f64::NEG_INFINITY };
        }
        if self.is_poisson() {
            return k * self.mu.ln() - self.mu - ln_gamma(k + 1.0);
        }
        let size = 1.0 / self.phi;
        let q = self.mu / (size + self.mu);
        ln_gamma(k + size) - ln_gamma(size) - ln_gamma(k + 1.0) + size * (-q).ln_1p() + k * q.ln()
    }

    /// The ratio `P(X = k + 1) / P(X = k)`.
    #[inline]
    fn pmf_ratio(&self, k: f64) -> f64 {
        if self.is_poisson() {
            self.mu / (k + 1.0)
        } else {
            let size = 1.0 / self.phi;
            (k + size) / (k + 1.0) * (self.mu / (size + self.mu))
        }
    }

    /// The smallest integer `k >= floor` with `P(X >= k) < threshold`, and that probability.
    ///
    /// Starts from the Wilson–Hilferty quantile of the Gamma with the same mean and variance (close to
    /// the answer), evaluates the tail there once exactly, then walks one count at a time carrying
    /// `P(X >= k)` and `P(X = k)` with the pmf recurrence: one incomplete beta and one log-pmf per call.
    pub fn lowest_outlying(&self, threshold: f64, floor: f64) -> (f64, f64) {
        let b = self.boundary(threshold, floor);
        (b.k, b.tail)
    }

    /// [`NegBin::lowest_outlying`] with `P(X = k)` too, for [`NegBin::tail_near`].
    pub fn boundary(&self, threshold: f64, floor: f64) -> Boundary {
        let floor = if floor.is_finite() {
            floor.ceil().max(1.0)
        } else {
            1.0
        };
        if self.mu <= 0.0 {
            return Boundary {
                k: floor,
                tail: 0.0,
                pmf: 0.0,
            };
        }
        let var = self.variance();
        let a = self.mu * self.mu / var;
        let s = var / self.mu;
        let z = crate::density::special::ndtri(1.0 - threshold.clamp(1e-300, 0.5));
        let c = 1.0 / (9.0 * a);
        let wh = a * s * (1.0 - c + z * c.sqrt()).max(0.0).powi(3);
        let mut k = wh.ceil().max(1.0);
        let mut tail = self.upper_tail(k);
        let mut pk = self.ln_pmf(k).exp();
        let mut steps = 0u32;
        const MAX_STEPS: u32 = 20_000;
        if tail < threshold {
            // Step down while the count below is still outlying.
            while k > 1.0 && steps < MAX_STEPS {
                let pm = pk / self.pmf_ratio(k - 1.0);
                let t = tail + pm;
                if t >= threshold {
                    break;
                }
                k -= 1.0;
                tail = t;
                pk = pm;
                steps += 1;
            }
        } else {
            while tail >= threshold && steps < MAX_STEPS {
                tail -= pk;
                pk *= self.pmf_ratio(k);
                k += 1.0;
                steps += 1;
            }
        }
        if steps >= MAX_STEPS || !tail.is_finite() || pk.is_nan() {
            let (k, tail) = self.bisect(threshold, floor);
            return Boundary {
                k,
                tail,
                pmf: f64::NAN,
            };
        }
        // Then up to the floor, if min_increase asks for more.
        if floor > k {
            if floor - k > 64.0 {
                return Boundary {
                    k: floor,
                    tail: self.upper_tail(floor),
                    pmf: self.ln_pmf(floor).exp(),
                };
            }
            while k < floor {
                tail -= pk;
                pk *= self.pmf_ratio(k);
                k += 1.0;
            }
        }
        Boundary {
            k,
            tail: tail.max(0.0),
            pmf: pk,
        }
    }

    /// `P(X >= x)` from a boundary of this distribution: a short walk with the pmf recurrence when `x`
    /// is within 48 counts of it, else the incomplete beta.
    pub fn tail_near(&self, b: &Boundary, x: f64) -> f64 {
        let x = x.ceil().max(0.0);
        if x <= 0.0 {
            return 1.0;
        }
        if !b.pmf.is_finite() || b.pmf <= 0.0 || (x - b.k).abs() > 48.0 {
            return self.upper_tail(x);
        }
        let (mut k, mut tail, mut pk) = (b.k, b.tail, b.pmf);
        while k > x {
            pk /= self.pmf_ratio(k - 1.0);
            k -= 1.0;
            tail += pk;
        }
        while k < x {
            tail -= pk;
            pk *= self.pmf_ratio(k);
            k += 1.0;
        }
        tail.clamp(0.0, 1.0)
    }

    /// Bisection on the exact tail, for starts far from the answer.
    fn bisect(&self, threshold: f64, floor: f64) -> (f64, f64) {
        if self.upper_tail(floor) < threshold {
            return (floor, self.upper_tail(floor));
        }
        let mut lo = floor;
        let mut hi = floor.max(1.0) * 2.0;
        while self.upper_tail(hi) >= threshold {
            lo = hi;
            hi *= 2.0;
            if hi > 1e15 {
                return (f64::INFINITY, 0.0);
            }
        }
        while hi - lo > 1.0 {
            let mid = ((lo + hi) / 2.0).floor();
            if self.upper_tail(mid) < threshold {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (hi, self.upper_tail(hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `P(X >= k)` by summing the pmf term by term.
    fn brute_tail(d: &NegBin, k: u64) -> f64 {
        let below: f64 = (0..k).map(|j| d.ln_pmf(j as f64).exp()).sum();
        let mut above = 0.0;
        let mut j = k;
        loop {
            let t = d.ln_pmf(j as f64).exp();
            above += t;
            if (t < 1e-300 || t < above * 1e-17) && j as f64 > d.mu {
                break;
            }
            j += 1;
        }
        // Use the sum that does not cancel.
        if above < 0.5 { above } else { 1.0 - below }
    }

    #[test]
    fn tail_matches_brute_force_sum() {
        for (mu, phi) in [
            (0.3, 0.0),
            (6.0, 0.0),
            (6.0, 0.2),
            (6.0, 1.5),
            (250.0, 0.05),
            (1500.0, 0.02),
            (0.05, 3.0),
        ] {
            let d = NegBin::new(mu, phi);
            for k in [0u64, 1, 2, 5, 10, 30, 60, 300, 2000, 4000] {
                let want = brute_tail(&d, k);
                let got = d.upper_tail(k as f64);
                let tol = 1e-9 * want.max(1e-280) + 1e-300;
                assert!(
                    (got - want).abs() <= tol.max(want * 1e-7),
                    "mu={mu} phi={phi} k={k}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn pmf_sums_to_one() {
        let d = NegBin::new(12.0, 0.4);
        let s: f64 = (0..5000).map(|k| d.ln_pmf(k as f64).exp()).sum();
        assert!((s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn lowest_outlying_is_the_crossing() {
        for (mu, phi) in [
            (6.0, 0.0),
            (6.0, 0.3),
            (0.2, 2.0),
            (40.0, 1.0),
            (1500.0, 0.03),
            (3000.0, 0.0),
        ] {
            let d = NegBin::new(mu, phi);
            for th in [0.01, 1e-4, 1e-7] {
                for floor in [0.0, 10.0, mu + 50.0] {
                    let (k, t) = d.lowest_outlying(th, floor);
                    assert!(t < th, "mu={mu} phi={phi} th={th}");
                    let exact = d.upper_tail(k);
                    assert!((t - exact).abs() <= 1e-12 + 1e-6 * exact, "{t} vs {exact}");
                    let f = floor.ceil().max(1.0);
                    assert!(k >= f);
                    assert!(
                        k == f || d.upper_tail(k - 1.0) >= th,
                        "mu={mu} phi={phi} th={th} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn tail_near_a_boundary_matches_the_exact_tail() {
        for (mu, phi) in [(6.0, 0.3), (0.4, 2.0), (300.0, 0.05), (5.0, 0.0)] {
            let d = NegBin::new(mu, phi);
            let b = d.boundary(1e-4, mu + 20.0);
            for x in [0.0, 1.0, 3.0, 7.0, 25.0, 40.0, 200.0, 320.0, 600.0, 5000.0] {
                let (got, want) = (d.tail_near(&b, x), d.upper_tail(x));
                assert!(
                    (got - want).abs() <= 1e-10 + 1e-6 * want,
                    "mu={mu} x={x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn silent_model_flags_any_count() {
        let d = NegBin::new(0.0, 0.5);
        assert_eq!(d.upper_tail(1.0), 0.0);
        assert_eq!(d.upper_tail(0.0), 1.0);
        assert_eq!(d.lowest_outlying(1e-4, 0.0), (1.0, 0.0));
    }
}
