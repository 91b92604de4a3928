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
    /// `(F(x), G(x))`; a family overrides it when the two share work.
    fn cdf_and_integral(&self, x: f64) -> (f64, f64) {
        (self.cdf(x), self.cdf_integral(x))
    }
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
    fn cdf_and_integral(&self, x: f64) -> (f64, f64) {
        GaussianKde::cdf_and_integral(self, x)
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
    fn cdf_and_integral(&self, x: f64) -> (f64, f64) {
        Beta::cdf_and_integral(self, x)
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
    // F and G at every distinct value, each computed once.
    let fg: Vec<(f64, f64)> = st.iter().map(|s| fit.cdf_and_integral(s.0)).collect();
    // Left of the data Fₙ = 0; right of it Fₙ = 1.
    let last = st[st.len() - 1].0;
    let mut total = fg[0].1 + (fg[fg.len() - 1].1 - last + fit.mean());
    for i in 0..st.len() - 1 {
        let (a, b, level) = (st[i].0, st[i + 1].0, st[i].2);
        let ((fa, ga), (fb, gb)) = (fg[i], fg[i + 1]);
        // Above the level: ∫(F - c) = ΔG - cΔx; below: cΔx - ΔG.
        total += if fa >= level {
            ((gb - ga) - level * (b - a)).max(0.0)
        } else if fb <= level {
            (level * (b - a) - (gb - ga)).max(0.0)
        } else {
            let t = crossing(fit, a, b, fa, fb, level);
            let gt = fit.cdf_integral(t);
            (level * (t - a) - (gt - ga)).max(0.0) + ((gb - gt) - level * (b - t)).max(0.0)
        };
    }
    total.max(0.0)
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
        // The area error from a crossing off by δ is about |F(t) - level|·δ: negligible here.
        if ft.abs() <= 1e-13 {
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

/// The KDE's distance, exactly when that is cheap, else through a [`KdeTable`]. The exact CDF costs one
/// `erfc` per nearby kernel and evaluation point, which for 10,000 distinct floats on each side takes
/// seconds; count data (few distinct values) always takes the exact path.
pub fn kde_distance(metric: Metric, sorted: &[f64], kde: &GaussianKde) -> f64 {
    let distinct_values = steps(sorted).len() as f64;
    let exact_cost = kde.points.len() as f64 * distinct_values * 3.0;
    match KdeTable::nodes_needed(kde) {
        Some(nodes)
            if (nodes as f64) * (2 * TABLE_REACH + 1) as f64 + distinct_values * 8.0
                < exact_cost =>
        {
            distance(metric, sorted, &KdeTable::new(kde))
        }
        _ => distance(metric, sorted, kde),
    }
}

/// Table steps per kernel bandwidth.
const TABLE_STEPS_PER_H: usize = 32;
/// Kernels reach this many table steps (8 bandwidths); beyond, Φ is 0 or 1 to within 1e-15.
const TABLE_REACH: usize = 8 * TABLE_STEPS_PER_H;

/// The KDE's F, G and density tabulated on a lattice of spacing h/32 spanning the data ±8h, with the
/// kernel centres linearly binned onto the same lattice (so the sums are convolutions with fixed
/// weights), and cubic Hermite interpolation in between. Used only to rank auto candidates: its
/// relative error is about 1e-4.
pub struct KdeTable {
    x0: f64,
    step: f64,
    f: Vec<f64>,
    big_g: Vec<f64>,
    pdf: Vec<f64>,
    mean: f64,
}

impl KdeTable {
    /// Lattice size for `kde`, or None when the data range spans too many bandwidths for a table.
    fn nodes_needed(kde: &GaussianKde) -> Option<usize> {
        let span = (kde.max - kde.min) / kde.h;
        let nodes = (span + 16.0) * TABLE_STEPS_PER_H as f64 + 2.0;
        (nodes < 4e6).then_some(nodes as usize)
    }

    pub fn new(kde: &GaussianKde) -> KdeTable {
        let step = kde.h / TABLE_STEPS_PER_H as f64;
        let x0 = kde.min - 8.0 * kde.h;
        let nodes = KdeTable::nodes_needed(kde).expect("caller checked the span");
        // Linear binning of the kernel centres.
        let mut w = vec![0.0; nodes];
        for (p, c) in kde.points.iter().zip(&kde.counts) {
            let pos = (p - x0) / step;
            let i = (pos.floor() as usize).min(nodes - 2);
            let frac = pos - i as f64;
            w[i] += *c as f64 * (1.0 - frac);
            w[i + 1] += *c as f64 * frac;
        }
        // Kernel values at lattice offsets -R..=R.
        let r = TABLE_REACH as i64;
        let zs: Vec<f64> = (-r..=r)
            .map(|j| j as f64 / TABLE_STEPS_PER_H as f64)
            .collect();
        let phi: Vec<f64> = zs.iter().map(|z| ndtr(*z)).collect();
        let dens: Vec<f64> = zs.iter().map(|z| norm_pdf(*z)).collect();
        let gk: Vec<f64> = zs.iter().map(|z| z * ndtr(*z) + norm_pdf(*z)).collect();
        // Prefix sums of weight and weight·index, for kernels entirely to the left.
        let mut p0 = vec![0.0; nodes + 1];
        let mut p1 = vec![0.0; nodes + 1];
        for k in 0..nodes {
            p0[k + 1] = p0[k] + w[k];
            p1[k + 1] = p1[k] + w[k] * k as f64;
        }
        let m = kde.size as f64;
        let (mut f, mut big_g, mut pdf) = (vec![0.0; nodes], vec![0.0; nodes], vec![0.0; nodes]);
        for i in 0..nodes {
            let lo = i.saturating_sub(TABLE_REACH);
            let hi = (i + TABLE_REACH).min(nodes - 1);
            // Kernels left of the window: Φ = 1 and zΦ + φ = z = (i - k)/32.
            let (wl, ml) = (p0[lo], p1[lo]);
            let mut sf = wl;
            let mut sg = (i as f64 * wl - ml) / TABLE_STEPS_PER_H as f64;
            let mut sp = 0.0;
            for (k, wk) in w.iter().enumerate().take(hi + 1).skip(lo) {
                if *wk == 0.0 {
                    continue;
                }
                let j = (i as i64 - k as i64 + r) as usize;
                sf += wk * phi[j];
                sg += wk * gk[j];
                sp += wk * dens[j];
            }
            f[i] = sf / m;
            big_g[i] = kde.h * sg / m;
            pdf[i] = sp / (m * kde.h);
        }
        KdeTable {
            x0,
            step,
            f,
            big_g,
            pdf,
            mean: kde.mean,
        }
    }

    /// Cubic Hermite interpolation of (value, derivative) tables at `x`.
    fn hermite(&self, v: &[f64], d: &[f64], x: f64) -> f64 {
        let pos = (x - self.x0) / self.step;
        let i = (pos.floor() as usize).min(v.len() - 2);
        let t = pos - i as f64;
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        h00 * v[i] + h10 * self.step * d[i] + h01 * v[i + 1] + h11 * self.step * d[i + 1]
    }

    fn top(&self) -> f64 {
        self.x0 + (self.f.len() - 1) as f64 * self.step
    }
}

impl FittedCdf for KdeTable {
    fn cdf(&self, x: f64) -> f64 {
        if x <= self.x0 {
            0.0
        } else if x >= self.top() {
            1.0
        } else {
            self.hermite(&self.f, &self.pdf, x).clamp(0.0, 1.0)
        }
    }
    fn cdf_integral(&self, x: f64) -> f64 {
        if x <= self.x0 {
            0.0
        } else if x >= self.top() {
            self.big_g[self.big_g.len() - 1] + (x - self.top())
        } else {
            self.hermite(&self.big_g, &self.f, x)
        }
    }
    fn mean(&self) -> f64 {
        self.mean
    }
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
            Candidate::GaussianKde(d) => kde_distance(metric, sorted, d),
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
        let n = 100_000;
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
    fn kde_table_matches_the_exact_kde() {
        let data: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0 + (i % 13) as f64 * 0.37)
            .collect();
        let k = GaussianKde::fit(&data, 10_000, 0).unwrap();
        let t = KdeTable::new(&k);
        for x in [-5.0, 0.0, 12.3, 50.0, 77.7, 99.0, 110.0, 140.0] {
            assert!((t.cdf(x) - k.cdf(x)).abs() < 2e-5, "F({x})");
            assert!(
                (t.cdf_integral(x) - k.cdf_integral(x)).abs() < 2e-4,
                "G({x})"
            );
        }
        let mut sorted = data.clone();
        sorted.sort_by(f64::total_cmp);
        for m in [Metric::Wasserstein, Metric::KolmogorovSmirnov] {
            let (exact, table) = (distance(m, &sorted, &k), distance(m, &sorted, &t));
            assert!(
                (exact - table).abs() <= 1e-3 * exact,
                "{m:?}: {exact} vs {table}"
            );
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
    fn beta_cdf_and_integral_match_scipy() {
        let b = Beta {
            alpha: 2.5,
            beta: 4.0,
            loc: -0.1,
            scale: 1.3,
            min: 10.0,
            max: 30.0,
            cardinality: 10,
        };
        // scipy.special.betainc, and the antiderivative from it, on the standard scale.
        for (x, f, g) in [
            (8.0, 0.0, 0.0),
            (10.0, 0.02001694235852475, 0.011886935964682415),
            (17.5, 0.4862823410902542, 1.6466335080287946),
            (29.0, 0.990389288964805, 11.010051500543685),
        ] {
            let (gf, gg) = b.cdf_and_integral(x);
            assert!(
                (gf - f).abs() < 1e-13 && (gg - g).abs() < 1e-12 * g.max(1.0),
                "{x}: {gf} {gg}"
            );
        }
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
