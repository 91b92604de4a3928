//! The probability distributions behind `fit smbdensity`, their outlier boundaries and MLTK's text for them.
//!
//! A group's training values are summarised by a [`GroupStats`] accumulator, fitted into a
//! [`Distribution`], and turned into [`BoundaryRange`]s once per threshold. A value is an outlier when it
//! lies strictly inside one of the ranges, exactly as MLTK's DensityFunction decides.

pub mod auto;
pub mod beta;
pub mod cephes;
pub mod exponential;
pub mod kde;
pub mod normal;
pub mod optim;
pub mod pyfmt;
pub mod reservoir;
pub mod rng;
pub mod special;

use serde::{Deserialize, Serialize};

pub use exponential::Exponential;
pub use normal::Normal;

/// MLTK's `REPLACE_ZERO_STD`: the standard deviation given to a constant group.
pub const REPLACE_ZERO_STD: f64 = 1e-6;

/// Why a distribution could not be fitted to a group (MLTK's `DistributionFitError`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// The data is constant under MLTK's `allclose` test (or too short); the payload is the type name.
    #[error(
        "Unable to fit a {0} distribution due to numerical errors. All values in the dataset are the same."
    )]
    Constant(&'static str),
    /// The optimizer or a special function failed.
    #[error("Unable to fit a {0} distribution due to numerical errors.")]
    Numerical(&'static str),
    /// `dist=auto`: every candidate left after `exclude_dist` failed to fit.
    #[error("Unable to fit any of the candidate distributions to this group.")]
    NoCandidate,
}

/// The `metric=` option: how auto selection measures the distance between the data and a fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// 1-Wasserstein distance (MLTK's default).
    Wasserstein,
    /// Kolmogorov–Smirnov statistic.
    KolmogorovSmirnov,
}

impl Metric {
    /// Parses MLTK's spelling (`wasserstein`, `kolmogorov_smirnov`).
    pub fn from_param(s: &str) -> Option<Metric> {
        match s {
            "wasserstein" => Some(Metric::Wasserstein),
            "kolmogorov_smirnov" => Some(Metric::KolmogorovSmirnov),
            _ => None,
        }
    }

    /// The spelling `summary` shows (`metric: wasserstein, distance: …`).
    pub fn param(self) -> &'static str {
        match self {
            Metric::Wasserstein => "wasserstein",
            Metric::KolmogorovSmirnov => "kolmogorov_smirnov",
        }
    }
}

/// numpy's `allclose(data, data[0], rtol=1e-4, atol=1e-8)`, MLTK's "all values are the same" test.
/// Empty data counts as constant.
pub fn allclose_to_first(data: &[f64]) -> bool {
    let Some(&first) = data.first() else {
        return true;
    };
    let tol = 1e-8 + 1e-4 * first.abs();
    data.iter().all(|x| (x - first).abs() <= tol)
}

/// numpy's `np.sum` of a contiguous float64 array: pairwise summation with 8 accumulators in blocks of
/// at most 128. Summaries computed in this order print the same digits as MLTK's.
pub fn np_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// The `dist=` option of `fit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DistKind {
    Auto,
    Normal,
    Exponential,
    GaussianKde,
    Beta,
    /// The per-entity negative-binomial count model (`entity=<field> dist=negbin`, [`crate::hostmodel`]).
    NegBin,
}

impl DistKind {
    /// Parses MLTK's spelling of `dist=` (`auto`, `norm`, `expon`, `gaussian_kde`, `beta`).
    pub fn from_param(s: &str) -> Option<DistKind> {
        Some(match s {
            "auto" => DistKind::Auto,
            "norm" => DistKind::Normal,
            "expon" => DistKind::Exponential,
            "gaussian_kde" => DistKind::GaussianKde,
            "beta" => DistKind::Beta,
            "negbin" => DistKind::NegBin,
            _ => return None,
        })
    }

    /// The `dist=` spelling.
    pub fn param(self) -> &'static str {
        match self {
            DistKind::Auto => "auto",
            DistKind::Normal => "norm",
            DistKind::Exponential => "expon",
            DistKind::GaussianKde => "gaussian_kde",
            DistKind::Beta => "beta",
            DistKind::NegBin => "negbin",
        }
    }
}

/// One outlier criterion, as MLTK's `OutlierThreshold` resolves it for one set of output columns.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Threshold {
    /// `threshold=t`: both tails for Normal, the right tail for Exponential, a low-density set otherwise.
    Total(f64),
    /// `lower_threshold=l` alone.
    Lower(f64),
    /// `upper_threshold=u` alone.
    Upper(f64),
    /// `lower_threshold=l upper_threshold=u` together.
    LowerUpper(f64, f64),
}

/// How a range's area prints in `BoundaryRanges`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Area {
    /// Python `str(v)` of the value as is (Normal prints `t/2` unrounded).
    Exact(f64),
    /// Python `str(round(v, 4))`.
    Rounded(f64),
    /// The integer literal `0` (Exponential's below-minimum range).
    Zero,
}

/// One outlier region `begin:end:area`. Values strictly between `begin` and `end` are outliers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundaryRange {
    pub begin: f64,
    pub end: f64,
    pub area: Area,
    /// The end is the training minimum of an integer-typed column, which Python prints without `.0`.
    pub end_integral: bool,
    /// The begin is an integer in an integer-typed column (Beta's `[1, inf, 0]` range rescaled).
    pub begin_integral: bool,
}

impl BoundaryRange {
    /// True when `x` lies strictly inside this range.
    #[inline]
    pub fn contains(&self, x: f64) -> bool {
        self.begin < x && x < self.end
    }

    /// Appends MLTK's text for this range, `begin:end:area`.
    pub fn write_text(&self, out: &mut String) {
        let mut b = Vec::new();
        self.write_text_bytes(&mut b);
        out.push_str(std::str::from_utf8(&b).expect("ASCII"));
    }

    /// [`BoundaryRange::write_text`] into bytes, without allocating.
    pub fn write_text_bytes(&self, out: &mut Vec<u8>) {
        self.write_bounds_bytes(out);
        self.area.write_bytes(out);
    }

    /// The text before the area, `begin:end:`.
    #[inline]
    pub fn write_bounds_bytes(&self, out: &mut Vec<u8>) {
        pyfmt::write_bound_bytes(out, self.begin, self.begin_integral);
        out.push(b':');
        pyfmt::write_bound_bytes(out, self.end, self.end_integral);
        out.push(b':');
    }
}

impl Area {
    /// The area's text in a range.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        match *self {
            Area::Exact(a) => pyfmt::write_repr_bytes(out, a),
            Area::Rounded(a) => pyfmt::write_repr_bytes(out, pyfmt::round4(a)),
            Area::Zero => out.push(b'0'),
        }
    }
}

/// True when `x` is an outlier under `ranges`.
#[inline]
pub fn is_outlier(ranges: &[BoundaryRange], x: f64) -> bool {
    ranges.iter().any(|r| r.contains(x))
}

/// MLTK's multivalue `BoundaryRanges` text: one range per line.
pub fn ranges_text(ranges: &[BoundaryRange]) -> String {
    let mut s = String::new();
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        r.write_text(&mut s);
    }
    s
}

/// Streaming summary of one group's training values: exact count, min, max and a numerically stable
/// mean and sum of squared deviations (Welford, merged with Chan's formula). Normal and Exponential
/// fits need nothing else, so a fit over any number of rows runs in constant memory per group, and a
/// `partial_fit` that merges two of these equals a fit on all rows together (up to rounding).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
    /// The group's first value in input order: MLTK's constant-data test compares against it.
    pub first: f64,
}

impl GroupStats {
    /// Adds one value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        if self.count == 0 {
            self.first = x;
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Merges `other`, whose values came after this group's.
    pub fn merge(&mut self, other: &GroupStats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Population standard deviation (ddof 0), as scipy's `norm.fit` returns it.
    pub fn std_ddof0(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2.max(0.0) / self.count as f64).sqrt()
        }
    }

    /// numpy's `allclose(data, data[0], rtol=1e-4, atol=1e-8)`: MLTK's test for data too constant to
    /// fit anything but a Normal with `std = 1e-6`.
    pub fn is_constant(&self) -> bool {
        let tol = 1e-8 + 1e-4 * self.first.abs();
        (self.max - self.first).abs() <= tol && (self.first - self.min).abs() <= tol
    }
}

/// A fitted distribution for one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Distribution {
    Normal(Normal),
    Exponential(Exponential),
    GaussianKde(kde::GaussianKde),
    Beta(beta::Beta),
}

impl From<auto::Candidate> for Distribution {
    fn from(c: auto::Candidate) -> Distribution {
        match c {
            auto::Candidate::Normal(d) => Distribution::Normal(d),
            auto::Candidate::Exponential(d) => Distribution::Exponential(d),
            auto::Candidate::GaussianKde(d) => Distribution::GaussianKde(d),
            auto::Candidate::Beta(d) => Distribution::Beta(d),
        }
    }
}

impl Distribution {
    /// The distance between this fit and the empirical CDF of `sorted` (ascending values).
    pub fn distance(&self, metric: Metric, sorted: &[f64]) -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        match self {
            Distribution::Normal(d) => auto::distance(metric, sorted, d),
            Distribution::Exponential(d) => auto::distance(metric, sorted, d),
            Distribution::GaussianKde(d) => auto::distance(metric, sorted, d),
            Distribution::Beta(d) => auto::distance(metric, sorted, d),
        }
    }

    /// Fits `kind` (not `Auto`) to a group. Normal and Exponential need only the statistics; KDE and
    /// Beta need the group's values (its reservoir).
    pub fn fit(
        kind: DistKind,
        stats: &GroupStats,
        values: &[f64],
        max_kde_points: usize,
        seed: u64,
    ) -> Result<Distribution, FitError> {
        match kind {
            DistKind::Normal | DistKind::Auto => Ok(Distribution::Normal(Normal::fit(stats))),
            // Per-entity count models are fitted by `hostmodel`, not group by group.
            DistKind::NegBin => Err(FitError::NoCandidate),
            DistKind::Exponential if stats.is_constant() => Err(FitError::Constant("Exponential")),
            DistKind::Exponential => Ok(Distribution::Exponential(Exponential::fit(stats))),
            DistKind::GaussianKde => {
                let mut k = kde::GaussianKde::fit(values, max_kde_points, seed)?;
                k.cardinality = stats.count;
                Ok(Distribution::GaussianKde(k))
            }
            DistKind::Beta => {
                let mut b = beta::Beta::fit(values)?;
                b.cardinality = stats.count;
                Ok(Distribution::Beta(b))
            }
        }
    }

    /// The outlier ranges for one threshold. `integral` says the training column was integer-typed.
    pub fn boundaries(&self, threshold: Threshold, integral: bool) -> Vec<BoundaryRange> {
        match self {
            Distribution::Normal(d) => d.boundaries(threshold),
            Distribution::Exponential(d) => d.boundaries(threshold, integral),
            Distribution::GaussianKde(d) => d.boundaries(threshold),
            Distribution::Beta(d) => d.boundaries(threshold, integral),
        }
    }

    /// [`Distribution::boundaries`], appended to `out` (no allocation for Normal and Exponential).
    pub fn boundaries_into(
        &self,
        threshold: Threshold,
        integral: bool,
        out: &mut Vec<BoundaryRange>,
    ) {
        match self {
            Distribution::Normal(d) => d.boundaries_into(threshold, out),
            Distribution::Exponential(d) => d.boundaries_into(threshold, integral, out),
            other => out.extend(other.boundaries(threshold, integral)),
        }
    }

    /// The probability density at `x` (MLTK's `ProbabilityDensity`).
    pub fn pdf(&self, x: f64) -> f64 {
        match self {
            Distribution::Normal(d) => d.pdf(x),
            Distribution::Exponential(d) => d.pdf(x),
            Distribution::GaussianKde(d) => d.pdf(x),
            Distribution::Beta(d) => d.pdf(x),
        }
    }

    /// The fitted cumulative distribution function.
    pub fn cdf(&self, x: f64) -> f64 {
        match self {
            Distribution::Normal(d) => special::ndtr((x - d.mean) / d.std),
            Distribution::Exponential(d) => {
                if x < d.loc {
                    0.0
                } else {
                    -(-(x - d.loc) / d.scale).exp_m1()
                }
            }
            Distribution::GaussianKde(d) => d.cdf(x),
            Distribution::Beta(d) => d.cdf(x),
        }
    }

    /// One random draw from the distribution (MLTK's `FullSampledValue`).
    pub fn sample(&self, rng: &mut rng::Rng) -> f64 {
        match self {
            Distribution::Normal(d) => d.mean + d.std * rng.standard_normal(),
            Distribution::Exponential(d) => d.loc - d.scale * (1.0 - rng.unit()).ln(),
            Distribution::GaussianKde(d) => {
                let mut k = rng.below(d.size as u64);
                let mut i = 0;
                while k >= u64::from(d.counts[i]) {
                    k -= u64::from(d.counts[i]);
                    i += 1;
                }
                d.points[i] + d.h * rng.standard_normal()
            }
            Distribution::Beta(d) => {
                let y = statrs::function::beta::inv_beta_reg(d.alpha, d.beta, rng.unit());
                d.min + (d.loc + d.scale * y) * (d.max - d.min)
            }
        }
    }

    /// A random draw from the inlier region of `ranges` (MLTK's `SampledValue`), by rejection; None if
    /// the inlier region is too small to hit.
    pub fn sample_inlier(&self, ranges: &[BoundaryRange], rng: &mut rng::Rng) -> Option<f64> {
        (0..10_000)
            .map(|_| self.sample(rng))
            .find(|x| !is_outlier(ranges, *x))
    }

    /// The `type` column of `summary`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Distribution::Normal(_) => "Normal",
            Distribution::Exponential(_) => "Exponential",
            Distribution::GaussianKde(_) => "Gaussian KDE",
            Distribution::Beta(_) => "Beta",
        }
    }

    /// The `min` and `max` columns of `summary`: the training range, except for KDE, whose summary
    /// describes its stored (possibly capped) sample.
    pub fn summary_min_max(&self, stats: &GroupStats) -> (f64, f64) {
        match self {
            Distribution::GaussianKde(d) => (d.min, d.max),
            _ => (stats.min, stats.max),
        }
    }

    /// The `mean` and `std` columns of `summary` (Exponential and Beta: loc and scale).
    pub fn summary_mean_std(&self) -> (f64, f64) {
        match self {
            Distribution::Normal(d) => (d.mean, d.std),
            Distribution::Exponential(d) => (d.loc, d.scale),
            Distribution::GaussianKde(d) => (d.mean, d.std),
            Distribution::Beta(d) => (d.loc, d.scale),
        }
    }

    /// The `other` column of `summary`.
    pub fn summary_other(&self) -> String {
        match self {
            Distribution::GaussianKde(d) => d.summary_other(),
            Distribution::Beta(d) => d.summary_other(),
            _ => "N/A".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass_and_merges() {
        let a = [
            12.0, 15.0, 9.0, 20.0, 18.0, 11.0, 14.0, 16.0, 13.0, 17.0, 10.0, 19.0, 22.0, 8.0, 15.0,
        ];
        let mut s = GroupStats::default();
        a.iter().for_each(|x| s.push(*x));
        assert_eq!(s.mean, 14.6);
        assert!((s.std_ddof0() - 4.013311184877976).abs() < 1e-14);
        let (mut l, mut r) = (GroupStats::default(), GroupStats::default());
        a[..6].iter().for_each(|x| l.push(*x));
        a[6..].iter().for_each(|x| r.push(*x));
        l.merge(&r);
        assert!((l.mean - 14.6).abs() < 1e-14);
        assert!((l.std_ddof0() - 4.013311184877976).abs() < 1e-14);
        assert_eq!((l.min, l.max, l.count, l.first), (8.0, 22.0, 15, 12.0));
    }

    #[test]
    fn constant_test_is_relative() {
        let mut s = GroupStats::default();
        [10000.0, 10001.0].iter().for_each(|x| s.push(*x));
        assert!(s.is_constant());
        let mut s = GroupStats::default();
        [10.0, 11.0].iter().for_each(|x| s.push(*x));
        assert!(!s.is_constant());
    }
}
