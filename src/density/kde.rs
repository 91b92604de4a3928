//! The Gaussian KDE (`dist=gaussian_kde`): scipy's `gaussian_kde` with Scott's bandwidth, and MLTK's grid
//! and bisection level-set search for the outlier ranges, quirks included, so the BoundaryRanges text matches.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::pyfmt;
use super::special::ndtr;
use super::{Area, BoundaryRange, FitError, Threshold, allclose_to_first, np_sum};

/// Beyond this many bandwidths a kernel's density `exp(-z²/2)` underflows to exactly 0, and both of its
/// `ndtr` values are exactly 0 or exactly 1. Skipping such kernels therefore leaves every sum bit-identical
/// to the full sum, which is what lets a group with 10,000 points search its grid quickly.
const CUTOFF_Z: f64 = 40.0;

/// `1/sqrt(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// A fitted Gaussian KDE. The stored sample is kept as its distinct values with multiplicities, which is
/// the same kernel sum (count data has few distinct values, so this is much smaller and faster).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianKde {
    /// Distinct values of the stored sample, ascending.
    pub points: Vec<f64>,
    /// How often each of `points` occurs in the stored sample.
    pub counts: Vec<u32>,
    /// Size of the stored sample (`parameter size`).
    pub size: usize,
    /// Number of training values, including those beyond the sample cap.
    pub cardinality: u64,
    /// Min, max, mean and population std (ddof 0) of the stored sample, as MLTK's summary shows them.
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// Scott's factor `size^(-1/5)`.
    pub factor: f64,
    /// Kernel standard deviation: Scott's factor times the ddof-1 std (scipy's `np.cov`).
    pub h: f64,
}

/// SplitMix64: a tiny, well-mixed generator; only used to pick the stored sample reproducibly.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift with rejection, so it is unbiased).
    fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

/// scipy's effective sample size `1/Σwᵢ²` for `m` equal weights `1/m`. It is not exactly `m`: numpy
/// forms the dot product with OpenBLAS' Haswell `ddot` (16 FMA lanes, pairwise lane reduction, plain
/// tail), and reproducing that order makes the summary's `bandwidth` print MLTK's digits.
fn scott_neff(m: usize) -> f64 {
    let w = 1.0 / m as f64;
    let full = m & !15;
    let mut acc = [0.0f64; 16];
    for _ in (0..full).step_by(16) {
        for a in &mut acc {
            *a = w.mul_add(w, *a);
        }
    }
    let y: Vec<f64> = (0..4)
        .map(|l| (acc[l] + acc[l + 4]) + (acc[8 + l] + acc[12 + l]))
        .collect();
    let mut dot = (y[0] + y[2]) + (y[1] + y[3]);
    for _ in full..m {
        dot += w * w;
    }
    1.0 / dot
}

/// The stored sample when a group has more than `max_points` values: `max_points` distinct positions
/// drawn **without replacement** by a partial Fisher–Yates shuffle driven by SplitMix64(`seed`), then
/// kept in input order. MLTK draws with replacement from numpy's global RNG, which cannot be matched;
/// without replacement keeps every stored value a distinct training row, and the same input and seed
/// always give the same sample.
pub fn sample_indices(n: usize, max_points: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed);
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..max_points.min(n) {
        let j = i + rng.below((n - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(max_points.min(n));
    idx.sort_unstable();
    idx
}

impl GaussianKde {
    /// Fits on `values` (input order). Above `max_points` values a seeded sample is stored
    /// ([`sample_indices`]). Fails like MLTK when the stored sample is constant under numpy's
    /// `allclose(rtol=1e-4)` or has at most one point.
    pub fn fit(values: &[f64], max_points: usize, seed: u64) -> Result<GaussianKde, FitError> {
        let sampled: Vec<f64>;
        let sample: &[f64] = if values.len() > max_points {
            sampled = sample_indices(values.len(), max_points, seed)
                .into_iter()
                .map(|i| values[i])
                .collect();
            &sampled
        } else {
            values
        };
        if sample.len() <= 1 || allclose_to_first(sample) {
            return Err(FitError::Constant("Gaussian KDE"));
        }
        // scipy's covariance of non-finite data is NaN and its Cholesky fails.
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(FitError::Numerical("Gaussian KDE"));
        }
        let m = sample.len();
        let mf = m as f64;
        // numpy's order of operations (pairwise sums, in input order) for the summary's mean and std.
        let mean = np_sum(sample) / mf;
        let sq: Vec<f64> = sample.iter().map(|x| (x - mean) * (x - mean)).collect();
        let ss = np_sum(&sq);
        let std = (ss / mf).sqrt();
        let factor = scott_neff(m).powf(-0.2);
        let data_cov = ss / (mf - 1.0);
        let h = (data_cov * factor * factor).sqrt();

        let mut sorted = sample.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut points = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        for x in sorted {
            if points.last() == Some(&x) {
                *counts.last_mut().expect("counts follows points") += 1;
            } else {
                points.push(x);
                counts.push(1);
            }
        }
        Ok(GaussianKde {
            min: points[0],
            max: *points.last().expect("at least two points"),
            points,
            counts,
            size: m,
            cardinality: values.len() as u64,
            mean,
            std,
            factor,
            h,
        })
    }

    /// The index range of `points` within `[lo, hi]`.
    fn window(&self, lo: f64, hi: f64) -> std::ops::Range<usize> {
        let a = self.points.partition_point(|p| *p < lo);
        let b = self.points.partition_point(|p| *p <= hi);
        a..b.max(a)
    }

    /// The density at `x` (scipy `gaussian_kde.pdf`).
    pub fn pdf(&self, x: f64) -> f64 {
        let r = self.window(x - CUTOFF_Z * self.h, x + CUTOFF_Z * self.h);
        let mut s = 0.0;
        for j in r {
            let z = (self.points[j] - x) / self.h;
            s += self.counts[j] as f64 * (-0.5 * z * z).exp();
        }
        s * FRAC_1_SQRT_2PI / (self.h * self.size as f64)
    }

    /// `∫_a^b pdf` (scipy `integrate_box_1d`).
    pub fn integrate(&self, a: f64, b: f64) -> f64 {
        let r = self.window(a - CUTOFF_Z * self.h, b + CUTOFF_Z * self.h);
        let mut s = 0.0;
        for j in r {
            let p = self.points[j];
            let d = ndtr((b - p) / self.h) - ndtr((a - p) / self.h);
            s += self.counts[j] as f64 * d;
        }
        s / self.size as f64
    }

    /// The CDF: the mean over the stored sample of `ndtr((x - xi)/h)`.
    pub fn cdf(&self, x: f64) -> f64 {
        // Kernels far below x contribute exactly 1 each; count them without calling ndtr.
        let below = self.points.partition_point(|p| *p < x - CUTOFF_Z * self.h);
        let full: u64 = self.counts[..below].iter().map(|c| *c as u64).sum();
        let r = self.window(x - CUTOFF_Z * self.h, x + CUTOFF_Z * self.h);
        let mut s = 0.0;
        for j in r {
            s += self.counts[j] as f64 * ndtr((x - self.points[j]) / self.h);
        }
        (full as f64 + s) / self.size as f64
    }

    /// `∫_{-inf}^{x} cdf`: the mean over kernels of the Normal form `h·(zΦ(z) + φ(z))`. Auto selection
    /// uses it for the 1-Wasserstein distance. Kernels more than 40 bandwidths below `x` contribute
    /// `x - xi` (to within 1e-300) and those far above contribute nothing, so only nearby kernels need
    /// `ndtr`.
    pub fn cdf_integral(&self, x: f64) -> f64 {
        let below = self.points.partition_point(|p| *p < x - CUTOFF_Z * self.h);
        let mut linear = 0.0;
        for (p, c) in self.points[..below].iter().zip(&self.counts) {
            linear += *c as f64 * (x - p);
        }
        let r = self.window(x - CUTOFF_Z * self.h, x + CUTOFF_Z * self.h);
        let mut s = 0.0;
        for j in r {
            let z = (x - self.points[j]) / self.h;
            s += self.counts[j] as f64 * (z * ndtr(z) + super::special::norm_pdf(z));
        }
        (linear + self.h * s) / self.size as f64
    }

    /// `(cdf(x), cdf_integral(x))` with one `ndtr` per nearby kernel instead of two: both sums are
    /// formed term by term as in [`Self::cdf`] and [`Self::cdf_integral`], so each is bit-identical to
    /// the separate call. Auto selection's distance evaluates both at every distinct value.
    pub fn cdf_and_integral(&self, x: f64) -> (f64, f64) {
        let below = self.points.partition_point(|p| *p < x - CUTOFF_Z * self.h);
        let full: u64 = self.counts[..below].iter().map(|c| *c as u64).sum();
        let mut linear = 0.0;
        for (p, c) in self.points[..below].iter().zip(&self.counts) {
            linear += *c as f64 * (x - p);
        }
        let r = self.window(x - CUTOFF_Z * self.h, x + CUTOFF_Z * self.h);
        let (mut s, mut g) = (0.0, 0.0);
        for j in r {
            let c = self.counts[j] as f64;
            let z = (x - self.points[j]) / self.h;
            let f = ndtr(z);
            s += c * f;
            g += c * (z * f + super::special::norm_pdf(z));
        }
        (
            (full as f64 + s) / self.size as f64,
            (linear + self.h * g) / self.size as f64,
        )
    }

    /// The `bandwidth` MLTK shows in `summary`: Scott's factor times the ddof-0 std (not the kernel's h).
    pub fn bandwidth(&self) -> f64 {
        self.factor * self.std
    }

    /// The `other` column of `summary`.
    pub fn summary_other(&self) -> String {
        format!(
            "bandwidth: {}, parameter size: {}",
            pyfmt::repr(self.bandwidth()),
            self.size
        )
    }

    /// MLTK's outlier ranges for one threshold. An empty Vec is MLTK's empty BoundaryRanges.
    pub fn boundaries(&self, t: Threshold) -> Vec<BoundaryRange> {
        let range = |(begin, end, area): (f64, f64, f64)| BoundaryRange {
            begin,
            end,
            area: Area::Rounded(area),
            end_integral: false,
            begin_integral: false,
        };
        match t {
            Threshold::Total(t) => self.level_set(t).into_iter().map(range).collect(),
            Threshold::Lower(l) => vec![range(self.lower_tail(l))],
            Threshold::Upper(u) => vec![range(self.upper_tail(u))],
            Threshold::LowerUpper(l, u) => {
                vec![range(self.lower_tail(l)), range(self.upper_tail(u))]
            }
        }
    }

    /// MLTK's `_find_anomaly_ranges`: bisect a density level on a 1000-point grid over
    /// `[0.9·min, 1.1·max]` until the mass below it is within ±0.1 % of `t` or its 4-decimal rounding
    /// stops changing.
    fn level_set(&self, t: f64) -> Vec<(f64, f64, f64)> {
        let grid = linspace(self.min * 0.9, self.max * 1.1, 1000);
        let dens: Vec<f64> = grid.iter().map(|x| self.pdf(*x)).collect();
        let mut upper = dens.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut lower = 0.0;
        let mut prev_area: Option<f64> = None;
        let (lo_lim, hi_lim) = (t * 0.999, t * 1.001);
        // Ranges recur between iterations; integrals are cached by their (begin, end) grid positions.
        let cache = RefCell::new(HashMap::new());
        let integral = |bi: usize, ei: usize, mid: bool| {
            *cache.borrow_mut().entry((bi, ei, mid)).or_insert_with(|| {
                let end = if mid {
                    (grid[ei - 1] + grid[ei]) / 2.0
                } else {
                    grid[ei]
                };
                self.integrate(grid[bi], end)
            })
        };
        let mut ranges = LevelRanges::new(&grid, &dens);
        for _ in 0..1000 {
            let middle = (upper + lower) / 2.0;
            // Python's `sum` adds left to right.
            let area = ranges
                .at(middle, &integral)
                .iter()
                .fold(0.0, |s, r| s + r.2);
            let rounded = pyfmt::round4(area);
            if prev_area == Some(rounded) {
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
        let mut items = ranges.into_items();
        if let Some(first) = items.first_mut() {
            if first.0 <= self.min {
                first.0 = f64::NEG_INFINITY;
            }
        }
        if let Some(last) = items.last_mut() {
            if last.1 >= self.max {
                last.1 = f64::INFINITY;
            }
        }
        items
    }

    /// MLTK's `_find_anomaly_ranges_lower`: the left end stays at `0.9·min` while the right end is
    /// bisected; the result opens at -inf.
    fn lower_tail(&self, target: f64) -> (f64, f64, f64) {
        let left = self.min * 0.9;
        let mut right = self.max * 1.1;
        let mut prev_right = right;
        let mut prev_area = None;
        let (lo_lim, hi_lim) = (target * 0.999, target * 1.001);
        let mut item = (left, right, 0.0);
        for _ in 0..1000 {
            let area = self.integrate(left, right);
            item = (left, right, area);
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
                right = (right + left) / 2.0;
            }
        }
        (f64::NEG_INFINITY, item.1, item.2)
    }

    /// MLTK's `_find_anomaly_ranges_upper`, the mirror image of [`Self::lower_tail`].
    fn upper_tail(&self, target: f64) -> (f64, f64, f64) {
        let mut left = self.min * 0.9;
        let right = self.max * 1.1;
        let mut prev_left = left;
        let mut prev_area = None;
        let (lo_lim, hi_lim) = (target * 0.999, target * 1.001);
        let mut item = (left, right, 0.0);
        for _ in 0..1000 {
            let area = self.integrate(left, right);
            item = (left, right, area);
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
                left = (left + right) / 2.0;
            }
        }
        (item.0, f64::INFINITY, item.2)
    }
}

/// numpy's `linspace(start, stop, num)`: `start + i·step`, with the last point set exactly to `stop`.
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut g: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    g[num - 1] = stop;
    g
}

/// [`auc`] at the successive levels of a bisection. The ranges depend only on which grid points lie
/// below the level, and that set is fixed by how many densities lie below it, so they are recomputed
/// only when that number changes: MLTK's search runs up to 1,000 bisection steps, and most of them
/// move the level between the same two densities. The ranges are the ones `auc` gives, bit for bit.
pub(crate) struct LevelRanges<'a> {
    grid: &'a [f64],
    dens: &'a [f64],
    /// The densities that can lie below a level (all but NaN), ascending.
    sorted: Vec<f64>,
    /// How many densities lay below the level of `items`.
    below: Option<usize>,
    items: Vec<(f64, f64, f64)>,
}

impl<'a> LevelRanges<'a> {
    pub(crate) fn new(grid: &'a [f64], dens: &'a [f64]) -> Self {
        let mut sorted: Vec<f64> = dens.iter().copied().filter(|d| !d.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        LevelRanges {
            grid,
            dens,
            sorted,
            below: None,
            items: Vec::new(),
        }
    }

    /// `auc(grid, dens, level, integral)`.
    pub(crate) fn at(
        &mut self,
        level: f64,
        integral: &impl Fn(usize, usize, bool) -> f64,
    ) -> &[(f64, f64, f64)] {
        let below = self.sorted.partition_point(|d| *d < level);
        if self.below != Some(below) {
            self.items = auc(self.grid, self.dens, level, integral);
            self.below = Some(below);
        }
        &self.items
    }

    /// The ranges of the last level.
    pub(crate) fn into_items(self) -> Vec<(f64, f64, f64)> {
        self.items
    }
}

/// MLTK's `_get_auc` on a grid: maximal runs of grid points whose density is below `level`. A run closed
/// by grid point `i` ends at `grid[i]` but its area stops at the midpoint `(grid[i-1] + grid[i])/2`; a run
/// still open at the end stops at the last grid point. `integral(begin, end, to_midpoint)` takes grid
/// indices.
///
/// MLTK tests `not begin`, so a run that begins at exactly `0.0` is not open: it starts at the next grid
/// point instead.
pub(crate) fn auc(
    grid: &[f64],
    dens: &[f64],
    level: f64,
    integral: &impl Fn(usize, usize, bool) -> f64,
) -> Vec<(f64, f64, f64)> {
    let mut begin: Option<usize> = None;
    let mut items = Vec::new();
    let is_open = |b: Option<usize>| matches!(b, Some(i) if grid[i] != 0.0);
    for i in 0..grid.len() {
        let below = dens[i] < level;
        if below && !is_open(begin) {
            begin = Some(i);
        } else if !below && is_open(begin) {
            let b = begin.expect("open range has a begin");
            items.push((grid[b], grid[i], integral(b, i, true)));
            begin = None;
        }
    }
    if is_open(begin) {
        let b = begin.expect("open range has a begin");
        let last = grid.len() - 1;
        items.push((grid[b], grid[last], integral(b, last, false)));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::ranges_text;

    const A: [f64; 15] = [
        12.0, 15.0, 9.0, 20.0, 18.0, 11.0, 14.0, 16.0, 13.0, 17.0, 10.0, 19.0, 22.0, 8.0, 15.0,
    ];
    const B: [f64; 14] = [
        1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 5.0, 20.0, 21.0, 21.0, 22.0, 23.0,
    ];
    const C: [f64; 12] = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 8.0];
    const D: [f64; 8] = [-10.0, -12.0, -11.0, -9.0, -13.0, -10.0, -11.0, -30.0];

    fn text(data: &[f64], t: f64) -> String {
        let k = GaussianKde::fit(data, 10_000, 0).unwrap();
        ranges_text(&k.boundaries(Threshold::Total(t)))
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn dataset_a_bandwidth_and_pdf() {
        let k = GaussianKde::fit(&A, 10_000, 0).unwrap();
        assert!(close(k.factor, 0.581810759152688, 1e-14));
        assert!(close(k.h, 2.416941814521339, 1e-14));
        assert!(close(k.bandwidth(), 2.334987627189829, 1e-14));
        for (x, want) in [
            (3.0, 0.002025233551799989),
            (8.0, 0.0390013499528849),
            (25.0, 0.007120603429055962),
            (40.0, 9.96156053151563e-15),
        ] {
            assert!(close(k.pdf(x), want, 1e-12), "pdf({x}) = {}", k.pdf(x));
        }
        assert_eq!(k.size, 15);
        assert_eq!(k.cardinality, 15);
        assert!(k.summary_other().ends_with(", parameter size: 15"));
    }

    #[test]
    fn reference_boundaries() {
        assert_eq!(text(&A, 0.01), "23.4853:Infinity:0.0098");
        assert_eq!(
            text(&A, 0.1),
            "-Infinity:7.9317:0.0247\n21.0348:Infinity:0.0753"
        );
        assert_eq!(text(&B, 0.01), "");
        assert_eq!(
            text(&B, 0.1),
            "11.2315:16.727:0.0994\n25.2756:Infinity:0.0005"
        );
        assert_eq!(text(&C, 0.1), "5.6024:Infinity:0.1003");
        assert_eq!(text(&D, 0.1), "-27.0:-17.5:0.1003");
    }

    #[test]
    fn reference_outliers() {
        let k = GaussianKde::fit(&A, 10_000, 0).unwrap();
        let r = k.boundaries(Threshold::Total(0.1));
        let flagged: Vec<usize> = (0..A.len())
            .filter(|i| crate::density::is_outlier(&r, A[*i]))
            .collect();
        assert_eq!(flagged, vec![12]);
        // At t=0.01 no range touches the grid's left end, so a value far below the data is an inlier.
        let r = k.boundaries(Threshold::Total(0.01));
        assert!(!crate::density::is_outlier(&r, 3.0));
        let k = GaussianKde::fit(&D, 10_000, 0).unwrap();
        let r = k.boundaries(Threshold::Total(0.1));
        assert!(D.iter().all(|x| !crate::density::is_outlier(&r, *x)));
    }

    #[test]
    fn constant_and_tiny_groups_fail() {
        let msg = "Unable to fit a Gaussian KDE distribution due to numerical errors. All values in the dataset are the same.";
        assert_eq!(
            GaussianKde::fit(&[5.0], 10_000, 0).unwrap_err().to_string(),
            msg
        );
        assert!(GaussianKde::fit(&[10000.0, 10001.0, 10000.5], 10_000, 0).is_err());
        assert!(GaussianKde::fit(&[1.0, 2.0], 10_000, 0).is_ok());
        assert_eq!(
            GaussianKde::fit(&[1.0, f64::INFINITY], 10_000, 0),
            Err(FitError::Numerical("Gaussian KDE"))
        );
    }

    #[test]
    fn weighted_points_equal_the_plain_kernel_sum() {
        let k = GaussianKde::fit(&B, 10_000, 0).unwrap();
        assert_eq!(k.points.len(), 9);
        for x in [-5.0, 0.0, 2.5, 11.0, 30.0] {
            let plain: f64 = B
                .iter()
                .map(|p| super::super::special::norm_pdf((x - p) / k.h) / k.h)
                .sum::<f64>()
                / B.len() as f64;
            assert!(close(k.pdf(x), plain, 1e-13));
            let plain_cdf: f64 =
                B.iter().map(|p| ndtr((x - p) / k.h)).sum::<f64>() / B.len() as f64;
            assert!(close(k.cdf(x), plain_cdf, 1e-13));
        }
        assert!(close(k.integrate(-100.0, 100.0), 1.0, 1e-14));
    }

    #[test]
    fn sampling_is_deterministic_and_without_replacement() {
        let a = sample_indices(1000, 100, 7);
        assert_eq!(a, sample_indices(1000, 100, 7));
        assert_ne!(a, sample_indices(1000, 100, 8));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        let values: Vec<f64> = (0..20_000).map(|i| (i % 97) as f64).collect();
        let k = GaussianKde::fit(&values, 10_000, 1).unwrap();
        assert_eq!(k.size, 10_000);
        assert_eq!(k.cardinality, 20_000);
    }

    #[test]
    fn cdf_and_integral_are_the_separate_calls_bit_for_bit() {
        let floats: Vec<f64> = (0..500)
            .map(|i| ((i * 7919) % 613) as f64 * 0.173)
            .collect();
        for data in [&A[..], &B[..], &C[..], &D[..], &floats[..]] {
            let k = GaussianKde::fit(data, 10_000, 0).unwrap();
            let (lo, hi) = (k.min - 50.0 * k.h, k.max + 50.0 * k.h);
            for i in 0..=400 {
                let x = lo + (hi - lo) * i as f64 / 400.0;
                let (f, g) = k.cdf_and_integral(x);
                assert_eq!(f.to_bits(), k.cdf(x).to_bits(), "F({x})");
                assert_eq!(g.to_bits(), k.cdf_integral(x).to_bits(), "G({x})");
            }
        }
    }

    #[test]
    fn level_ranges_are_auc_at_every_level() {
        let mut rng = crate::density::rng::Rng::new(9);
        for case in 0..50 {
            let n = 50 + rng.below(300) as usize;
            let grid = linspace(if case % 2 == 0 { 0.0 } else { -3.0 }, 7.0, n);
            // Densities with ties, zeros, infinities and NaN.
            let dens: Vec<f64> = (0..n)
                .map(|i| match rng.below(20) {
                    0 => f64::INFINITY,
                    1 => f64::NAN,
                    2 => 0.0,
                    3..=6 => (i % 7) as f64 * 0.01,
                    _ => rng.unit() * 0.1,
                })
                .collect();
            let integral =
                |b: usize, e: usize, mid: bool| grid[e] - grid[b] + if mid { 0.5 } else { 0.0 };
            let mut ranges = LevelRanges::new(&grid, &dens);
            let (mut lower, mut upper) = (0.0, 0.12);
            for step in 0..200 {
                let level = match step % 50 {
                    7 => f64::NAN,
                    8 => f64::INFINITY,
                    _ => (upper + lower) / 2.0,
                };
                let want = auc(&grid, &dens, level, &integral);
                let got = ranges.at(level, &integral).to_vec();
                let bits = |v: &[(f64, f64, f64)]| -> Vec<[u64; 3]> {
                    v.iter()
                        .map(|r| [r.0.to_bits(), r.1.to_bits(), r.2.to_bits()])
                        .collect()
                };
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "case {case} step {step} level {level}"
                );
                if rng.below(2) == 0 {
                    lower = level.min(upper);
                } else {
                    upper = level.max(lower);
                }
                if step % 40 == 39 {
                    (lower, upper) = (0.0, 0.12);
                }
            }
        }
    }

    #[test]
    fn cdf_integral_matches_quadrature() {
        let k = GaussianKde::fit(&A, 10_000, 0).unwrap();
        // ∫_{a}^{b} cdf by the trapezoid rule on a fine grid.
        let (a, b, n) = (0.0, 30.0, 30_000);
        let step = (b - a) / n as f64;
        let mut s = 0.5 * (k.cdf(a) + k.cdf(b));
        for i in 1..n {
            s += k.cdf(a + i as f64 * step);
        }
        s *= step;
        assert!(close(k.cdf_integral(b) - k.cdf_integral(a), s, 1e-7));
    }
}
