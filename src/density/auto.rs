//! Deterministic `dist=auto` (Decision 3): fit each candidate and keep the one whose CDF is closest to
//! the data's empirical CDF, by an exact 1-Wasserstein or Kolmogorov–Smirnov distance (no random draws).

use super::beta::Beta;
use super::kde::GaussianKde;
use super::special::{ndtr, norm_pdf};
use super::{DistKind, Exponential, FitError, GroupStats, Metric, Normal, allclose_to_first};

/// What the distance needs from a fitted distribution: its CDF `F`, the antiderivative
/// `G(x) = ∫_{-inf}^{x} F`, and its mean (which gives the right tail: `∫_x^inf (1 - F) = G(x) - x + mean`).
pub trait FittedCdf {
    fn cdf(&self, x: f64) -> f64;
    fn cdf_integral(&self, x: f64) -> f64;
    fn mean(&self) -> f64;
}

impl FittedCdf for Normal {
    fn cdf(&self, x: f64) -> f64 {
        ndtr((x - self.mean) / self.std)
    }
    /// `σ(zΦ(z) + φ(z))`.
    fn cdf_integral(&self, x: f64) -> f64 {
        let z = (x - self.mean) / self.std;
        self.std * (z * ndtr(z) + norm_pdf(z))
    }
    fn mean(&self) -> f64 {
        self.mean
    }
}

impl FittedCdf for Exponential {
    fn cdf(&self, x: f64) -> f64 {
        if x < self.loc {
            0.0
        } else {
            -(-(x - self.loc) / self.scale).exp_m1()
        }
    }
    /// `(x - loc) - scale·(1 - e^{-(x-loc)/scale})` for `x >= loc`, else 0.
    fn cdf_integral(&self, x: f64) -> f64 {
        if x < self.loc {
            0.0
        } else {
            (x - self.loc) + self.scale * (-(x - self.loc) / self.scale).exp_m1()
        }
    }
    fn mean(&self) -> f64 {
        self.loc + self.scale
    }
}

impl FittedCdf for GaussianKde {
    fn cdf(&self, x: f64) -> f64 {
        GaussianKde::cdf(self, x)
    }
    fn cdf_integral(&self, x: f64) -> f64 {
        GaussianKde::cdf_integral(self, x)
    }
    fn mean(&self) -> f64 {
        self.mean
    }
}

impl FittedCdf for Beta {
    fn cdf(&self, x: f64) -> f64 {
        Beta::cdf(self, x)
    }
    fn cdf_integral(&self, x: f64) -> f64 {
        Beta::cdf_integral(self, x)
    }
    fn mean(&self) -> f64 {
        let std_mean = self.alpha / (self.alpha + self.beta);
        self.min + (self.max - self.min) * (self.loc + self.scale * std_mean)
    }
}

/// The distance between the empirical CDF of `sorted` (ascending, non-empty) and a fitted CDF.
pub fn distance(metric: Metric, sorted: &[f64], fit: &impl FittedCdf) -> f64 {
    match metric {
        Metric::KolmogorovSmirnov => ks_distance(sorted, |x| fit.cdf(x)),
        Metric::Wasserstein => wasserstein_distance(sorted, fit),
    }
}

/// The distinct values of `sorted` with the empirical CDF just below and at each.
fn steps(sorted: &[f64]) -> Vec<(f64, f64, f64)> {
    let n = sorted.len() as f64;
    let mut out: Vec<(f64, f64, f64)> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let v = sorted[i];
        let mut j = i;
        while j < sorted.len() && sorted[j] == v {
            j += 1;
        }
        out.push((v, i as f64 / n, j as f64 / n));
        i = j;
    }
    out
}

/// `D = max_i max(i/n - F(x_(i)), F(x_(i)) - (i-1)/n)`; tied values are one step of the empirical CDF.
pub fn ks_distance(sorted: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    steps(sorted)
        .into_iter()
        .fold(0.0, |d, (v, before, after)| {
            let f = cdf(v);
            d.max(after - f).max(f - before)
        })
}

/// `W₁ = ∫ |Fₙ - F| dx`, piece by piece where `Fₙ` is constant, using `G = ∫F` and splitting a piece
/// where `F` crosses the step level.
pub fn wasserstein_distance(sorted: &[f64], fit: &impl FittedCdf) -> f64 {
    let st = steps(sorted);
    let g = |x: f64| fit.cdf_integral(x);
    // Left of the data Fₙ = 0; right of it Fₙ = 1.
    let first = st[0].0;
    let last = st[st.len() - 1].0;
    let mut total = g(first) + (g(last) - last + fit.mean());
    for w in st.windows(2) {
        let (a, b, level) = (w[0].0, w[1].0, w[0].2);
        total += step_area(fit, a, b, level);
    }
    total.max(0.0)
}

/// `∫_a^b |level - F|` for non-decreasing `F`.
fn step_area(fit: &impl FittedCdf, a: f64, b: f64, level: f64) -> f64 {
    let (fa, fb) = (fit.cdf(a), fit.cdf(b));
    let ga = fit.cdf_integral(a);
    let gb = fit.cdf_integral(b);
    // Above the level: ∫(F - c) = ΔG - cΔx; below: cΔx - ΔG.
    if fa >= level {
        return ((gb - ga) - level * (b - a)).max(0.0);
    }
    if fb <= level {
        return (level * (b - a) - (gb - ga)).max(0.0);
    }
    let t = crossing(fit, a, b, fa, fb, level);
    let gt = fit.cdf_integral(t);
    (level * (t - a) - (gt - ga)).max(0.0) + ((gb - gt) - level * (b - t)).max(0.0)
}

/// The point in `(a, b)` where `F` reaches `level`, by the Illinois variant of regula falsi (a few
/// CDF evaluations, bracket always kept).
fn crossing(
    fit: &impl FittedCdf,
    mut a: f64,
    mut b: f64,
    mut fa: f64,
    mut fb: f64,
    level: f64,
) -> f64 {
    fa -= level;
    fb -= level;
    let mut side = 0;
    for _ in 0..100 {
        let t = if fb != fa {
            (a * fb - b * fa) / (fb - fa)
        } else {
            0.5 * (a + b)
        };
        let t = if t > a && t < b { t } else { 0.5 * (a + b) };
        if b - a <= 1e-13 * (a.abs() + b.abs()).max(f64::MIN_POSITIVE) {
            return t;
        }
        let ft = fit.cdf(t) - level;
        if ft.abs() <= 1e-15 {
            return t;
        }
        if ft < 0.0 {
            a = t;
            fa = ft;
            if side == -1 {
                fb *= 0.5;
            }
            side = -1;
        } else {
            b = t;
            fb = ft;
            if side == 1 {
                fa *= 0.5;
            }
            side = 1;
        }
    }
    0.5 * (a + b)
}

/// A candidate fitted by [`select`].
#[derive(Clone, Debug, PartialEq)]
pub enum Candidate {
    Normal(Normal),
    Exponential(Exponential),
    GaussianKde(GaussianKde),
    Beta(Beta),
}

impl Candidate {
    /// The `dist=` kind of this candidate.
    pub fn kind(&self) -> DistKind {
        match self {
            Candidate::Normal(_) => DistKind::Normal,
            Candidate::Exponential(_) => DistKind::Exponential,
            Candidate::GaussianKde(_) => DistKind::GaussianKde,
            Candidate::Beta(_) => DistKind::Beta,
        }
    }

    fn distance(&self, metric: Metric, sorted: &[f64]) -> f64 {
        match self {
            Candidate::Normal(d) => distance(metric, sorted, d),
            Candidate::Exponential(d) => distance(metric, sorted, d),
            Candidate::GaussianKde(d) => distance(metric, sorted, d),
            Candidate::Beta(d) => distance(metric, sorted, d),
        }
    }
}

/// The outcome of auto selection: the chosen fit, its distance, and every candidate's distance (or why
/// it could not be fitted), in MLTK's candidate order.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub chosen: Candidate,
    pub distance: f64,
    pub tried: Vec<(DistKind, Result<f64, FitError>)>,
}

/// MLTK's candidate order; an earlier candidate wins a tie.
pub const CANDIDATES: [DistKind; 4] = [
    DistKind::Normal,
    DistKind::Exponential,
    DistKind::GaussianKde,
    DistKind::Beta,
];

/// Fits every candidate not in `exclude` to `values` (input order) and keeps the closest to the
/// empirical CDF under `metric`. Candidates that cannot be fitted (Exponential, KDE and Beta on constant
/// data) are skipped, as in MLTK. `kde_max_points`/`seed` go to [`GaussianKde::fit`].
pub fn select(
    values: &[f64],
    metric: Metric,
    exclude: &[DistKind],
    kde_max_points: usize,
    seed: u64,
) -> Result<Selection, FitError> {
    let mut stats = GroupStats::default();
    values.iter().for_each(|v| stats.push(*v));
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let constant = allclose_to_first(values);

    let mut best: Option<(Candidate, f64)> = None;
    let mut tried = Vec::new();
    for kind in CANDIDATES {
        if exclude.contains(&kind) {
            continue;
        }
        let fitted = match kind {
            DistKind::Normal if !values.is_empty() => Ok(Candidate::Normal(Normal::fit(&stats))),
            DistKind::Exponential if constant => Err(FitError::Constant("Exponential")),
            DistKind::Exponential => Ok(Candidate::Exponential(Exponential::fit(&stats))),
            DistKind::GaussianKde => {
                GaussianKde::fit(values, kde_max_points, seed).map(Candidate::GaussianKde)
            }
            DistKind::Beta => Beta::fit(values).map(Candidate::Beta),
            _ => Err(FitError::NoCandidate),
        };
        match fitted {
            Ok(c) => {
                let d = c.distance(metric, &sorted);
                tried.push((kind, Ok(d)));
                // NaN never wins; strictly smaller wins, so ties keep the earlier candidate.
                if best.as_ref().is_none_or(|(_, bd)| d < *bd || bd.is_nan()) && !d.is_nan() {
                    best = Some((c, d));
                }
            }
            Err(e) => tried.push((kind, Err(e))),
        }
    }
    let (chosen, distance) = best.ok_or(FitError::NoCandidate)?;
    Ok(Selection {
        chosen,
        distance,
        tried,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [f64; 15] = [
        12.0, 15.0, 9.0, 20.0, 18.0, 11.0, 14.0, 16.0, 13.0, 17.0, 10.0, 19.0, 22.0, 8.0, 15.0,
    ];

    fn stats(v: &[f64]) -> GroupStats {
        let mut s = GroupStats::default();
        v.iter().for_each(|x| s.push(*x));
        s
    }

    /// `∫|Fₙ - F|` by brute-force quadrature on a fine grid.
    fn brute_w1(sorted: &[f64], fit: &impl FittedCdf, lo: f64, hi: f64) -> f64 {
        let n = 400_000;
        let step = (hi - lo) / n as f64;
        let mut s = 0.0;
        for i in 0..n {
            let x = lo + (i as f64 + 0.5) * step;
            let fe = sorted.partition_point(|v| *v <= x) as f64 / sorted.len() as f64;
            s += (fe - fit.cdf(x)).abs();
        }
        s * step
    }

    #[test]
    fn wasserstein_matches_quadrature_for_every_family() {
        let mut sorted = A.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = Normal::fit(&stats(&A));
        let e = Exponential::fit(&stats(&A));
        let k = GaussianKde::fit(&A, 10_000, 0).unwrap();
        let b = Beta::fit(&A).unwrap();
        let (lo, hi) = (-40.0, 120.0);
        for (name, exact, brute) in [
            (
                "norm",
                wasserstein_distance(&sorted, &n),
                brute_w1(&sorted, &n, lo, hi),
            ),
            (
                "expon",
                wasserstein_distance(&sorted, &e),
                brute_w1(&sorted, &e, lo, hi),
            ),
            (
                "kde",
                wasserstein_distance(&sorted, &k),
                brute_w1(&sorted, &k, lo, hi),
            ),
            (
                "beta",
                wasserstein_distance(&sorted, &b),
                brute_w1(&sorted, &b, lo, hi),
            ),
        ] {
            assert!((exact - brute).abs() < 1e-5, "{name}: {exact} vs {brute}");
        }
    }

    #[test]
    fn ks_matches_the_textbook_formula() {
        let mut sorted = A.to_vec();
        sorted.sort_by(f64::total_cmp);
        let nrm = Normal::fit(&stats(&A));
        let n = sorted.len() as f64;
        let mut want: f64 = 0.0;
        for (i, x) in sorted.iter().enumerate() {
            let f = nrm.cdf(*x);
            want = want.max((i + 1) as f64 / n - f).max(f - i as f64 / n);
        }
        assert!((ks_distance(&sorted, |x| nrm.cdf(x)) - want).abs() < 1e-15);
    }

    #[test]
    fn cdfs_match_scipy() {
        let n = Normal {
            mean: 14.6,
            std: 4.013311184877976,
        };
        // scipy.stats.norm.cdf(10, 14.6, 4.013311184877976)
        assert!((FittedCdf::cdf(&n, 10.0) - 0.12585915605815273).abs() < 1e-15);
        let e = Exponential {
            loc: 8.0,
            scale: 6.6,
        };
        // scipy.stats.expon.cdf(20, 8, 6.6)
        assert!((FittedCdf::cdf(&e, 20.0) - 0.8376793888181518).abs() < 1e-15);
        assert_eq!(FittedCdf::cdf(&e, 7.0), 0.0);
    }

    #[test]
    fn selection_is_deterministic_and_respects_exclusions() {
        let s1 = select(&A, Metric::Wasserstein, &[], 10_000, 0).unwrap();
        let s2 = select(&A, Metric::Wasserstein, &[], 10_000, 0).unwrap();
        assert_eq!(s1, s2);
        assert_eq!(s1.tried.len(), 4);
        let best = s1
            .tried
            .iter()
            .filter_map(|(_, d)| d.as_ref().ok())
            .fold(f64::INFINITY, |a, b| a.min(*b));
        assert_eq!(s1.distance, best);
        let s = select(
            &A,
            Metric::KolmogorovSmirnov,
            &[DistKind::Normal, DistKind::GaussianKde],
            10_000,
            0,
        )
        .unwrap();
        assert!(matches!(
            s.chosen.kind(),
            DistKind::Exponential | DistKind::Beta
        ));
        // Exponential data picks the Exponential.
        let expo: Vec<f64> = (1..200)
            .map(|i| -(1.0 - i as f64 / 200.0f64).ln() * 10.0)
            .collect();
        let s = select(
            &expo,
            Metric::Wasserstein,
            &[DistKind::GaussianKde, DistKind::Beta],
            10_000,
            0,
        )
        .unwrap();
        assert_eq!(s.chosen.kind(), DistKind::Exponential);
    }

    #[test]
    fn constant_groups_keep_only_the_normal() {
        let c = [5.0; 20];
        let s = select(&c, Metric::Wasserstein, &[], 10_000, 0).unwrap();
        assert_eq!(s.chosen.kind(), DistKind::Normal);
        assert!(s.tried[1..].iter().all(|(_, r)| r.is_err()));
        assert_eq!(
            select(&c, Metric::Wasserstein, &[DistKind::Normal], 10_000, 0),
            Err(FitError::NoCandidate)
        );
    }
}
