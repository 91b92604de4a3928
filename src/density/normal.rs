//! The Normal distribution (`dist=norm`): closed-form MLE, two-sided or one-sided tail boundaries.

use serde::{Deserialize, Serialize};

use super::special::{ndtri_memo, norm_pdf};
use super::{Area, BoundaryRange, GroupStats, REPLACE_ZERO_STD, Threshold};

/// A fitted Normal: mean and population standard deviation (ddof 0), as scipy's `norm.fit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normal {
    pub mean: f64,
    pub std: f64,
}

impl Normal {
    /// Fits from a group's statistics. A zero spread becomes MLTK's `1e-6`.
    pub fn fit(stats: &GroupStats) -> Normal {
        let std = stats.std_ddof0();
        Normal {
            mean: stats.mean,
            std: if std == 0.0 { REPLACE_ZERO_STD } else { std },
        }
    }

    /// The value `z` standard deviations from the mean.
    #[inline]
    fn at(&self, z: f64) -> f64 {
        self.mean + self.std * z
    }

    /// MLTK's ranges: `threshold=t` splits `t` over both tails and prints `t/2` unrounded;
    /// `lower_threshold`/`upper_threshold` print the threshold as given.
    pub fn boundaries(&self, threshold: Threshold) -> Vec<BoundaryRange> {
        let mut out = Vec::with_capacity(2);
        self.boundaries_into(threshold, &mut out);
        out
    }

    /// [`Normal::boundaries`], appended to `out`.
    #[inline]
    pub fn boundaries_into(&self, threshold: Threshold, out: &mut Vec<BoundaryRange>) {
        let (ranges, n) = self.ranges(&Tails::new(threshold));
        out.extend_from_slice(&ranges[..n]);
    }

    /// The ranges of [`Normal::boundaries`] for tails worked out beforehand: the first `n` of the
    /// array.
    #[inline]
    pub fn ranges(&self, t: &Tails) -> ([BoundaryRange; 2], usize) {
        let range = |begin, end, area| BoundaryRange {
            begin,
            end,
            area: Area::Exact(area),
            end_integral: false,
            begin_integral: false,
        };
        let mut out = [range(0.0, 0.0, 0.0); 2];
        let mut n = 0;
        if let Some((z, area)) = t.lower {
            out[n] = range(f64::NEG_INFINITY, self.at(z), area);
            n += 1;
        }
        if let Some((z, area)) = t.upper {
            out[n] = range(self.at(z), f64::INFINITY, area);
            n += 1;
        }
        (out, n)
    }

    pub fn pdf(&self, x: f64) -> f64 {
        norm_pdf((x - self.mean) / self.std) / self.std
    }
}

/// MLTK's tails for one threshold, the same for every Normal: each a standard normal quantile and the
/// area it prints. `threshold=t` splits `t` over both tails and prints `t/2` unrounded;
/// `lower_threshold`/`upper_threshold` print the threshold as given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tails {
    lower: Option<(f64, f64)>,
    upper: Option<(f64, f64)>,
}

impl Tails {
    pub fn new(threshold: Threshold) -> Tails {
        let lower = |l: f64, area: f64| Some((ndtri_memo(l), area));
        let upper = |u: f64, area: f64| Some((ndtri_memo(1.0 - u), area));
        let (lower, upper) = match threshold {
            Threshold::Total(t) => (lower(t / 2.0, t / 2.0), upper(t / 2.0, t / 2.0)),
            Threshold::Lower(l) => (lower(l, l), None),
            Threshold::Upper(u) => (None, upper(u, u)),
            Threshold::LowerUpper(l, u) => (lower(l, l), upper(u, u)),
        };
        Tails { lower, upper }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::ranges_text;

    fn dataset_a() -> Normal {
        let mut s = GroupStats::default();
        for x in [
            12.0, 15.0, 9.0, 20.0, 18.0, 11.0, 14.0, 16.0, 13.0, 17.0, 10.0, 19.0, 22.0, 8.0, 15.0,
        ] {
            s.push(x);
        }
        Normal::fit(&s)
    }

    #[test]
    fn reference_values() {
        let n = dataset_a();
        let b = n.boundaries(Threshold::Total(0.01));
        assert!((b[0].end - 4.26239544573075).abs() < 1e-12);
        assert!((b[1].begin - 24.93760455426925).abs() < 1e-12);
        assert_eq!(
            ranges_text(&b),
            "-Infinity:4.2624:0.005\n24.9376:Infinity:0.005"
        );
        assert_eq!(
            ranges_text(&n.boundaries(Threshold::Total(0.1))),
            "-Infinity:7.9987:0.05\n21.2013:Infinity:0.05"
        );
        assert!((n.pdf(25.0) - 0.003461092252818406).abs() < 1e-15);
        assert_eq!(
            ranges_text(&n.boundaries(Threshold::Total(1e-9)))[..],
            *"-Infinity:-9.919:5e-10\n39.119:Infinity:5e-10"
        );
    }
}
