//! The Beta distribution (`dist=beta`): MLTK's 4-parameter fit (scipy `beta.fit`) on min–max normalised
//! data, and its grid/bisection outlier ranges on [0, 1], rescaled to the data.

use std::cell::Cell;

use super::cephes::{lbeta as ln_beta, log1p};
use serde::{Deserialize, Serialize};

use super::kde::{LevelRanges, linspace};
use super::optim::{fmin, fsolve};
use super::{Area, BoundaryRange, FitError, Threshold, allclose_to_first, np_sum, pyfmt};

/// numpy's `log(finfo(float64).max)`: scipy penalises each data point outside the support by 100 times
/// this.
const LOG_XMAX: f64 = 709.782712893384;

/// A fitted Beta: shapes `alpha`/`beta` and `loc`/`scale` on the normalised data
/// `z = (x - min)/(max - min)`. MLTK's summary shows `loc`/`scale` as `mean`/`std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
    pub loc: f64,
    pub scale: f64,
    /// Training min and max, which define the normalisation.
    pub min: f64,
    pub max: f64,
    pub cardinality: u64,
}

/// The standard Beta log-density as scipy's `beta._logpdf` forms it:
/// `xlog1py(b-1, -y) + xlogy(a-1, y) - betaln(a, b)`, with scipy's Cephes `log1p` and `betaln` so the
/// likelihood matches scipy's to the last bit.
fn std_logpdf(y: f64, a: f64, b: f64, lnb: f64) -> f64 {
    let t1 = if b - 1.0 == 0.0 && !y.is_nan() {
        0.0
    } else {
        (b - 1.0) * log1p(-y)
    };
    let t2 = if a - 1.0 == 0.0 && !y.is_nan() {
        0.0
    } else {
        (a - 1.0) * y.ln()
    };
    (t1 + t2) - lnb
}

/// The regularised incomplete beta function `I_x(a, b)` by the classic continued fraction (modified
/// Lentz), on the side of the mean where it converges fast. Near the mean of a Beta with huge shapes it
/// needs about `sqrt(a + b)` terms; statrs' `beta_reg` stops at 140 and is then off by up to 1e-4, which
/// is why this exists. The prefactor uses scipy's `betaln` and `log1p(-x)` to keep precision.
fn beta_reg(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - beta_reg(b, a, 1.0 - x);
    }
    let front = (a * x.ln() + b * log1p(-x) - ln_beta(a, b)).exp() / a;
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    let max_terms = 1000 + 20 * ((a + b).sqrt() as usize);
    for m in 1..=max_terms {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + aa / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() <= 1e-16 {
            break;
        }
    }
    front * h
}

/// The standard Beta density on [0, 1] (0 outside), with the limits at the ends.
fn std_pdf(y: f64, a: f64, b: f64) -> f64 {
    std_pdf_lnb(y, a, b, || ln_beta(a, b))
}

/// [`std_pdf`] with `ln B(a, b)` from `lnb`, so a caller evaluating many points computes it once.
fn std_pdf_lnb(y: f64, a: f64, b: f64, lnb: impl FnOnce() -> f64) -> f64 {
    if !(0.0..=1.0).contains(&y) {
        return 0.0;
    }
    let edge = |shape: f64, other: f64| {
        if shape < 1.0 {
            f64::INFINITY
        } else if shape == 1.0 {
            (-ln_beta(1.0, other)).exp()
        } else {
            0.0
        }
    };
    if y == 0.0 {
        return edge(a, b);
    }
    if y == 1.0 {
        return edge(b, a);
    }
    std_logpdf(y, a, b, lnb()).exp()
}

/// The standard Beta CDF (regularised incomplete beta), clamped outside [0, 1].
fn std_cdf(y: f64, a: f64, b: f64) -> f64 {
    if y <= 0.0 {
        0.0
    } else if y >= 1.0 {
        1.0
    } else {
        beta_reg(a, b, y)
    }
}

/// numpy's `mean` and `var` (ddof 0) of `z`.
fn mean_var(z: &[f64]) -> (f64, f64) {
    let n = z.len() as f64;
    let mean = np_sum(z) / n;
    let sq: Vec<f64> = z.iter().map(|v| (v - mean) * (v - mean)).collect();
    (mean, np_sum(&sq) / n)
}

/// The skewness and excess kurtosis `_fitstart` solves for: numpy's `mean(d**3)/m2**1.5` and
/// `mean(d**4)/m2**2 - 3` with `d = z - mean(z)`. Each distinct value's power is taken once (`powf` is
/// most of the cost) and the powers of all points are summed in input order, which is numpy's sum bit
/// for bit.
fn skew_kurtosis(z: &[f64], distinct: &[f64], index: &[u32]) -> (f64, f64) {
    let n = z.len() as f64;
    let mu = np_sum(z) / n;
    let d: Vec<f64> = distinct.iter().map(|v| v - mu).collect();
    let moment = |f: &dyn Fn(f64) -> f64| {
        let per_value: Vec<f64> = d.iter().map(|v| f(*v)).collect();
        np_sum_gathered(&per_value, index) / n
    };
    let m2 = moment(&|v| v * v);
    let g1 = moment(&|v| v.powf(3.0)) / m2.powf(1.5);
    let g2 = moment(&|v| v.powf(4.0)) / (m2 * m2) - 3.0;
    (g1, g2)
}

/// scipy's `beta._fitstart`: solve the skewness/kurtosis equations for (a, b) from (1, 1) with
/// `fsolve`, then loc/scale by moments, widened to cover the data when the moment estimate does not.
/// `distinct`/`index` describe `z` as in [`Nnlf`].
fn fit_start(z: &[f64], distinct: &[f64], index: &[u32]) -> [f64; 4] {
    let (g1, g2) = skew_kurtosis(z, distinct, index);
    let sol = fsolve(
        |x, out| {
            let (a, b) = (x[0], x[1]);
            let sk = 2.0 * (b - a) * (a + b + 1.0).sqrt() / (a + b + 2.0) / (a * b).sqrt();
            let mut ku = a.powf(3.0) - a.powf(2.0) * (2.0 * b - 1.0) + b.powf(2.0) * (b + 1.0)
                - 2.0 * a * b * (b + 2.0);
            ku /= a * b * (a + b + 2.0) * (a + b + 3.0);
            ku *= 6.0;
            out[0] = sk - g1;
            out[1] = ku - g2;
        },
        &[1.0, 1.0],
    );
    let (a, b) = (sol.x[0], sol.x[1]);
    // fit_loc_scale: Beta(a, b) moments (NaN for invalid shapes, as scipy's `stats` gives).
    let (m, v) = if a > 0.0 && b > 0.0 {
        let ab = a + b;
        (a / ab, a * b / (ab * ab * (ab + 1.0)))
    } else {
        (f64::NAN, f64::NAN)
    };
    let (muhat, mu2hat) = mean_var(z);
    let mut shat = (mu2hat / v).sqrt();
    let mut lhat = muhat - shat * m;
    if !lhat.is_finite() {
        lhat = 0.0;
    }
    if !(shat.is_finite() && shat > 0.0) {
        shat = 1.0;
    }
    let (data_a, data_b) = z
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if lhat < data_a && data_b < lhat + shat {
        return [a, b, lhat, shat];
    }
    let width = data_b - data_a;
    let margin = width * 0.1;
    [a, b, (data_a - 0.0) - margin, (width + 2.0 * margin) / 1.0]
}

/// scipy's `_penalized_nnlf` for Beta on the normalised data. Each distinct value's log-density is
/// computed once and the sum is formed over all points in input order, so the result is bit-identical
/// to scipy's while count data (few distinct values) costs few logarithms.
///
/// The sum cannot use the multiplicities (`Σ cₖ·lₖ`): that rounds differently, Nelder–Mead's comparisons
/// then take other branches, and the fitted shapes (printed in full by `summary`) change.
struct Nnlf {
    /// Number of data points.
    n: usize,
    distinct: Vec<f64>,
    /// Each point's position in `distinct`, in input order.
    index: Vec<u32>,
    /// Scratch: each distinct value's log-density for the current parameters (NaN outside the support).
    logpdf: Vec<f64>,
    /// Scratch: which distinct values have a non-finite log-density now.
    bad: Vec<bool>,
    /// `index` without the points whose value was bad under `kept_for`. Nelder–Mead often probes
    /// supports that cut off the same few extreme values, so this is rebuilt only when that set changes.
    kept: Vec<u32>,
    kept_for: Vec<bool>,
}

impl Nnlf {
    fn new(z: &[f64]) -> Self {
        let mut distinct = z.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let index = z
            .iter()
            .map(|v| {
                let i = distinct
                    .binary_search_by(|p| p.total_cmp(v))
                    .expect("value is present");
                u32::try_from(i).expect("fewer than 2^32 distinct values")
            })
            .collect();
        Nnlf {
            n: z.len(),
            logpdf: vec![0.0; distinct.len()],
            bad: vec![false; distinct.len()],
            distinct,
            index,
            kept: Vec::new(),
            kept_for: Vec::new(),
        }
    }

    fn eval(&mut self, theta: &[f64]) -> f64 {
        let (a, b, loc, scale) = (theta[0], theta[1], theta[2], theta[3]);
        if !(a > 0.0 && b > 0.0) || scale <= 0.0 {
            return f64::INFINITY;
        }
        let lnb = ln_beta(a, b);
        let mut any_bad = false;
        for ((l, bad), v) in self
            .logpdf
            .iter_mut()
            .zip(&mut self.bad)
            .zip(&self.distinct)
        {
            let y = (v - loc) / scale;
            *l = if (0.0..=1.0).contains(&y) {
                std_logpdf(y, a, b, lnb)
            } else {
                f64::NAN
            };
            *bad = !l.is_finite();
            any_bad |= *bad;
        }
        // numpy sums the finite log-densities in input order; points outside the support or at an
        // infinite edge are left out and penalised.
        let (total, n_bad) = if !any_bad {
            (np_sum_gathered(&self.logpdf, &self.index), 0usize)
        } else {
            if self.kept_for != self.bad {
                self.kept.clear();
                let bad = &self.bad;
                self.kept
                    .extend(self.index.iter().filter(|&&i| !bad[i as usize]));
                self.kept_for.clone_from(&self.bad);
            }
            (
                np_sum_gathered(&self.logpdf, &self.kept),
                self.index.len() - self.kept.len(),
            )
        };
        (-total + n_bad as f64 * LOG_XMAX * 100.0) + self.n as f64 * scale.ln()
    }
}

/// [`np_sum`] of `values[index[0]], values[index[1]], …` without building that array: the same
/// pairwise blocks and the same 8 accumulators, so the result is bit-identical.
fn np_sum_gathered(values: &[f64], index: &[u32]) -> f64 {
    let at = |i: u32| values[i as usize];
    let n = index.len();
    if n < 8 {
        index.iter().fold(0.0, |s, &i| s + at(i))
    } else if n <= 128 {
        let mut r = [0.0; 8];
        for (r, &i) in r.iter_mut().zip(&index[..8]) {
            *r = at(i);
        }
        let whole = n - n % 8;
        for block in index[8..whole].chunks_exact(8) {
            for (r, &i) in r.iter_mut().zip(block) {
                *r += at(i);
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &i in &index[whole..] {
            res += at(i);
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum_gathered(values, &index[..n2]) + np_sum_gathered(values, &index[n2..])
    }
}

impl Beta {
    /// Fits MLTK's way: refuse constant data, normalise by min/max, run scipy's `beta.fit` (moment start,
    /// then Nelder–Mead on the penalised likelihood), and fall back to the method of moments when the
    /// optimizer returns a non-positive shape.
    ///
    /// scipy 1.17 itself raises `FitError` for such a result (so MLTK reports a fit failure); older scipy
    /// returned it and MLTK's fallback applied. We keep the fallback, which never loses a group.
    pub fn fit(values: &[f64]) -> Result<Beta, FitError> {
        if values.len() <= 1 || allclose_to_first(values) {
            return Err(FitError::Constant("Beta"));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(FitError::Numerical("Beta"));
        }
        let (min, max) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let z: Vec<f64> = values.iter().map(|v| (v - min) / (max - min)).collect();
        let mut nnlf = Nnlf::new(&z);
        let start = fit_start(&z, &nnlf.distinct, &nnlf.index);
        let res = fmin(|t| nnlf.eval(t), &start);
        let (mut alpha, mut beta, loc, scale) = (res.x[0], res.x[1], res.x[2], res.x[3]);
        if scale.is_nan() || scale <= 0.0 || !alpha.is_finite() || !beta.is_finite() {
            return Err(FitError::Numerical("Beta"));
        }
        if alpha <= 0.0 || beta <= 0.0 {
            let (m, v) = mean_var(&z);
            let u = (m * (1.0 - m)) / v - 1.0;
            alpha = m * u;
            beta = (1.0 - m) * u;
        }
        Ok(Beta {
            alpha,
            beta,
            loc,
            scale,
            min,
            max,
            cardinality: values.len() as u64,
        })
    }

    /// The fitted density on the normalised scale: `pdf(z)` with `z = (x - min)/(max - min)`, not divided
    /// by `max - min` (MLTK's `ProbabilityDensity`).
    pub fn pdf(&self, x: f64) -> f64 {
        self.pdf_normalised((x - self.min) / (self.max - self.min))
    }

    fn pdf_normalised(&self, z: f64) -> f64 {
        std_pdf((z - self.loc) / self.scale, self.alpha, self.beta) / self.scale
    }

    fn cdf_normalised(&self, z: f64) -> f64 {
        std_cdf((z - self.loc) / self.scale, self.alpha, self.beta)
    }

    /// The CDF in data units.
    pub fn cdf(&self, x: f64) -> f64 {
        self.cdf_normalised((x - self.min) / (self.max - self.min))
    }

    /// `∫_{-inf}^{x} cdf` in data units: on the standard scale `y`, `y·I_y(a,b) - a/(a+b)·I_y(a+1,b)`,
    /// times `scale·(max - min)`; beyond the support it continues linearly. Auto selection uses it for
    /// the 1-Wasserstein distance.
    pub fn cdf_integral(&self, x: f64) -> f64 {
        self.cdf_and_integral(x).1
    }

    /// `(cdf(x), cdf_integral(x))` with one incomplete-beta evaluation, using
    /// `I_y(a+1, b) = I_y(a, b) - y^a (1-y)^b / (a·B(a, b))`. (statrs' `beta_reg` stops after 140
    /// continued-fraction terms, which is not enough for the huge shapes a Beta fit to normal data
    /// gets; the identity avoids the second, least accurate call.)
    pub fn cdf_and_integral(&self, x: f64) -> (f64, f64) {
        let (a, b) = (self.alpha, self.beta);
        let width = self.scale * (self.max - self.min);
        let y = ((x - self.min) / (self.max - self.min) - self.loc) / self.scale;
        let m = a / (a + b);
        if y <= 0.0 {
            (0.0, 0.0)
        } else if y >= 1.0 {
            (1.0, ((y - 1.0) + (1.0 - m)) * width)
        } else {
            let i = beta_reg(a, b, y);
            let tail = (a * y.ln() + b * (-y).ln_1p() - ln_beta(a, b)).exp() / (a + b);
            (i, ((y - m) * i + tail) * width)
        }
    }

    /// The `other` column of `summary`.
    pub fn summary_other(&self) -> String {
        format!(
            "Alpha: {}, Beta: {}",
            pyfmt::repr(self.alpha),
            pyfmt::repr(self.beta)
        )
    }

    /// MLTK's outlier ranges for one threshold, in data units. `integral` says the training column was
    /// integer-typed: MLTK then prints the training minimum of a `[-inf, min, 0]` range without `.0`.
    ///
    /// With several thresholds MLTK rescales the ranges of every earlier threshold again on each loop (a
    /// bug); we compute each threshold's ranges once, which gives MLTK's last column and correct earlier
    /// ones.
    pub fn boundaries(&self, t: Threshold, integral: bool) -> Vec<BoundaryRange> {
        let ranges = match t {
            Threshold::Total(t) => self.level_set(t),
            Threshold::Lower(l) => vec![self.lower_tail(l)],
            Threshold::Upper(u) => vec![self.upper_tail(u)],
            Threshold::LowerUpper(l, u) => vec![self.lower_tail(l), self.upper_tail(u)],
        };
        self.rescale(ranges, integral)
    }

    /// MLTK's `_find_anomaly_ranges` for Beta: the KDE level-set search on `linspace(0, 1, 1000)` with
    /// CDF differences for areas; the "no progress" stop only counts after iteration 100 (U- or J-shaped
    /// fits) or 1. Ranges below 0 / above 1 are added when the density rises towards that end.
    fn level_set(&self, t: f64) -> Vec<Range> {
        let grid = linspace(0.0, 1.0, 1000);
        let lnb = ln_beta(self.alpha, self.beta);
        let dens: Vec<f64> = grid
            .iter()
            .map(|z| {
                let y = (z - self.loc) / self.scale;
                std_pdf_lnb(y, self.alpha, self.beta, || lnb) / self.scale
            })
            .collect();
        // The CDF only at the grid points that end a range, each computed once.
        let cdf_cache: Vec<Cell<Option<f64>>> = vec![Cell::new(None); grid.len()];
        let cdf = |i: usize| {
            cdf_cache[i].get().unwrap_or_else(|| {
                let v = self.cdf_normalised(grid[i]);
                cdf_cache[i].set(Some(v));
                v
            })
        };
        let integral = |bi: usize, ei: usize, mid: bool| {
            let end = if mid {
                self.cdf_normalised((grid[ei - 1] + grid[ei]) / 2.0)
            } else {
                cdf(ei)
            };
            end - cdf(bi)
        };
        let mut upper = dens.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut lower = 0.0;
        let mut prev_area: Option<f64> = None;
        let (lo_lim, hi_lim) = (t * 0.999, t * 1.001);
        let max_iter = if self.alpha < 1.0 || self.beta < 1.0 {
            100
        } else {
            1
        };
        let mut ranges = LevelRanges::new(&grid, &dens);
        for i in 0..1000 {
            let middle = (upper + lower) / 2.0;
            let area = ranges
                .at(middle, &integral)
                .iter()
                .fold(0.0, |s, r| s + r.2);
            let rounded = pyfmt::round4(area);
            if prev_area == Some(rounded) && i > max_iter {
                break;
            }
            prev_area = Some(rounded);
            if lo_lim < area && area < hi_lim {
                break;
            } else if area < lo_lim {
                lower = middle;
            } else {
                upper = middle;
            }
        }
        let mut ranges: Vec<Range> = ranges
            .into_items()
            .into_iter()
            .map(|(b, e, a)| Range::searched(b, e, a))
            .collect();
        if self.alpha <= 1.0 {
            ranges.insert(0, Range::below_min());
        }
        if self.beta <= 1.0 {
            ranges.push(Range::above_max());
        }
        ranges
    }

    /// MLTK's `_find_anomaly_ranges_lower` for Beta: bisect the right end of `[0, right]` on the CDF;
    /// `[-inf, 0, 0]` when the density does not fall towards 0 (alpha <= 1).
    fn lower_tail(&self, target: f64) -> Range {
        if self.alpha <= 1.0 {
            return Range::below_min();
        }
        let mut right = 1.0;
        let mut prev_right = right;
        let mut prev_area = None;
        let (lo_lim, hi_lim) = (target * 0.999, target * 1.001);
        let mut item = Range::searched(0.0, right, 0.0);
        for _ in 0..1000 {
            let area = self.cdf_normalised(right);
            item = Range::searched(0.0, right, area);
            let rounded = pyfmt::round4(area);
            if prev_area == Some(rounded) {
                break;
            }
            prev_area = Some(rounded);
            if lo_lim < area && area < hi_lim {
                break;
            } else if area < lo_lim {
                right = (right + prev_right) / 2.0;
            } else {
                prev_right = right;
                right /= 2.0;
            }
        }
        item
    }

    /// MLTK's `_find_anomaly_ranges_upper` for Beta, the mirror image of [`Self::lower_tail`].
    fn upper_tail(&self, target: f64) -> Range {
        if self.beta <= 1.0 {
            return Range::above_max();
        }
        let mut left = 0.0;
        let mut prev_left = left;
        let mut prev_area = None;
        let (lo_lim, hi_lim) = (target * 0.999, target * 1.001);
        let mut item = Range::searched(left, 1.0, 0.0);
        for _ in 0..1000 {
            let area = 1.0 - self.cdf_normalised(left);
            item = Range::searched(left, 1.0, area);
            let rounded = pyfmt::round4(area);
            if prev_area == Some(rounded) {
                break;
            }
            prev_area = Some(rounded);
            if lo_lim < area && area < hi_lim {
                break;
            } else if area < lo_lim {
                left = (left + prev_left) / 2.0;
            } else {
                prev_left = left;
                left = (left + 1.0) / 2.0;
            }
        }
        item
    }

    /// MLTK's `_rescale_anomaly_ranges`: back to data units, then (unless both shapes are <= 1) the
    /// first and last ranges open to ∓inf when an end lies within 0.01 (absolute) of the training
    /// min/max.
    fn rescale(&self, ranges: Vec<Range>, integral: bool) -> Vec<BoundaryRange> {
        let width = self.max - self.min;
        let snap = !(self.alpha <= 1.0 && self.beta <= 1.0);
        let last = ranges.len().saturating_sub(1);
        ranges
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let mut begin = r.begin * width + self.min;
                let mut end = r.end * width + self.min;
                if snap && (k == 0 || k == last) {
                    if (begin - self.min).abs() <= 0.01 {
                        begin = f64::NEG_INFINITY;
                    }
                    if (end - self.max).abs() <= 0.01 {
                        end = f64::INFINITY;
                    }
                }
                BoundaryRange {
                    begin,
                    end,
                    area: r.area,
                    // MLTK's literal `0` end stays an integer when the data is.
                    end_integral: integral && r.literal_end,
                    begin_integral: integral && r.literal_begin && begin.is_finite(),
                }
            })
            .collect()
    }
}

/// A range on the normalised scale before rescaling.
#[derive(Clone, Copy, Debug)]
struct Range {
    begin: f64,
    end: f64,
    area: Area,
    /// The end is MLTK's integer literal `0` (the `[-inf, 0, 0]` range).
    literal_end: bool,
    /// The begin is MLTK's integer literal `1` (the `[1, inf, 0]` range).
    literal_begin: bool,
}

impl Range {
    fn searched(begin: f64, end: f64, area: f64) -> Range {
        Range {
            begin,
            end,
            area: Area::Rounded(area),
            literal_end: false,
            literal_begin: false,
        }
    }
    fn below_min() -> Range {
        Range {
            begin: f64::NEG_INFINITY,
            end: 0.0,
            area: Area::Zero,
            literal_end: true,
            literal_begin: false,
        }
    }
    fn above_max() -> Range {
        Range {
            begin: 1.0,
            end: f64::INFINITY,
            area: Area::Zero,
            literal_end: false,
            literal_begin: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_data_fails_like_mltk() {
        assert_eq!(
            Beta::fit(&[3.0, 3.0, 3.0]).unwrap_err().to_string(),
            "Unable to fit a Beta distribution due to numerical errors. All values in the dataset are the same."
        );
    }

    #[test]
    fn incomplete_beta_matches_scipy() {
        // scipy.special.betainc (Boost), including shapes where 140 continued-fraction terms are not enough.
        for (a, b, x, want, tol) in [
            (2.5, 4.0, 0.3, 0.3521975859067672, 1e-15),
            (0.3187, 0.4344, 0.02, 0.19289612313214216, 1e-14),
            (
                28.947142174947626,
                20.011942973772864,
                0.55,
                0.27529431979070224,
                1e-14,
            ),
            (
                550443.0025251668,
                227770.40518585208,
                0.7072842382286086,
                0.4751054372766783,
                1e-8,
            ),
        ] {
            let got = beta_reg(a, b, x);
            assert!(
                (got - want).abs() <= tol,
                "I_{x}({a}, {b}) = {got}, want {want}"
            );
        }
    }

    /// The likelihood as first written (an `Option` per point, then `np_sum` over the finite ones).
    fn nnlf_direct(z: &[f64], theta: &[f64]) -> f64 {
        let (a, b, loc, scale) = (theta[0], theta[1], theta[2], theta[3]);
        if !(a > 0.0 && b > 0.0) || scale <= 0.0 {
            return f64::INFINITY;
        }
        let lnb = ln_beta(a, b);
        let mut n_bad = 0usize;
        let mut finite = Vec::new();
        for v in z {
            let y = (v - loc) / scale;
            match (0.0..=1.0).contains(&y).then(|| std_logpdf(y, a, b, lnb)) {
                Some(l) if l.is_finite() => finite.push(l),
                _ => n_bad += 1,
            }
        }
        (-np_sum(&finite) + n_bad as f64 * LOG_XMAX * 100.0) + z.len() as f64 * scale.ln()
    }

    #[test]
    fn moments_over_distinct_values_are_numpys_bit_for_bit() {
        let mut rng = crate::density::rng::Rng::new(3);
        for case in 0..100 {
            let n = 2 + rng.below(3000) as usize;
            let distinct = 1 + rng.below(if case % 2 == 0 { 40 } else { 3000 });
            let z: Vec<f64> = (0..n)
                .map(|_| rng.below(distinct) as f64 / distinct as f64)
                .collect();
            let nnlf = Nnlf::new(&z);
            // The direct form, as first written.
            let nf = n as f64;
            let mu = np_sum(&z) / nf;
            let d: Vec<f64> = z.iter().map(|v| v - mu).collect();
            let pow_mean = |p: f64| np_sum(&d.iter().map(|v| v.powf(p)).collect::<Vec<_>>()) / nf;
            let m2 = np_sum(&d.iter().map(|v| v * v).collect::<Vec<_>>()) / nf;
            let want = (
                pow_mean(3.0) / m2.powf(1.5),
                pow_mean(4.0) / (m2 * m2) - 3.0,
            );
            let got = skew_kurtosis(&z, &nnlf.distinct, &nnlf.index);
            assert_eq!(
                (got.0.to_bits(), got.1.to_bits()),
                (want.0.to_bits(), want.1.to_bits()),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn gathered_sum_is_numpys_sum_bit_for_bit() {
        let mut rng = crate::density::rng::Rng::new(5);
        for n in (0..300).chain([1000, 1023, 4097, 100_000]) {
            let values: Vec<f64> = (0..37).map(|_| rng.standard_normal() * 1e3).collect();
            let index: Vec<u32> = (0..n).map(|_| rng.below(37) as u32).collect();
            let direct: Vec<f64> = index.iter().map(|&i| values[i as usize]).collect();
            assert_eq!(
                np_sum_gathered(&values, &index).to_bits(),
                np_sum(&direct).to_bits(),
                "n = {n}"
            );
        }
    }

    #[test]
    fn likelihood_equals_the_direct_sum_bit_for_bit() {
        let mut rng = crate::density::rng::Rng::new(11);
        for case in 0..200 {
            let n = 2 + rng.below(5000) as usize;
            let distinct = 1 + rng.below(if case % 2 == 0 { 60 } else { 5000 });
            let raw: Vec<f64> = (0..n).map(|_| rng.below(distinct) as f64 * 0.37).collect();
            let (lo, hi) = raw
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(*v), h.max(*v))
                });
            if hi == lo {
                continue;
            }
            let z: Vec<f64> = raw.iter().map(|v| (v - lo) / (hi - lo)).collect();
            let mut nnlf = Nnlf::new(&z);
            for _ in 0..20 {
                // Shapes on both sides of 1, supports that cover the data or cut it.
                let theta = [
                    0.2 + 5.0 * rng.unit(),
                    0.2 + 5.0 * rng.unit(),
                    -0.2 + 0.25 * rng.unit(),
                    0.9 + 0.4 * rng.unit(),
                ];
                let (fast, direct) = (nnlf.eval(&theta), nnlf_direct(&z, &theta));
                assert_eq!(
                    fast.to_bits(),
                    direct.to_bits(),
                    "{theta:?}: {fast} vs {direct}"
                );
            }
            for theta in [
                [1.0, 1.0, 0.0, 1.0],
                [2.0, 3.0, 0.0, 1.0],
                [-1.0, 1.0, 0.0, 1.0],
            ] {
                let (fast, direct) = (nnlf.eval(&theta), nnlf_direct(&z, &theta));
                assert_eq!(fast.to_bits(), direct.to_bits(), "{theta:?}");
            }
        }
    }

    #[test]
    fn pdf_and_cdf_agree() {
        let b = Beta {
            alpha: 2.5,
            beta: 4.0,
            loc: -0.1,
            scale: 1.3,
            min: 10.0,
            max: 30.0,
            cardinality: 10,
        };
        // ∫ pdf over the data range by the trapezoid rule, in normalised units.
        let n = 20_000;
        let mut s = 0.0;
        for i in 0..=n {
            let z = i as f64 / n as f64;
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            s += w * b.pdf_normalised(z);
        }
        s /= n as f64;
        assert!((s - (b.cdf(30.0) - b.cdf(10.0))).abs() < 1e-8);
    }
}
