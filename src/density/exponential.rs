//! The Exponential distribution (`dist=expon`): `loc = min`, `scale = mean - min`, a right-tail boundary,
//! and MLTK 5.7's rule that any value below the training minimum is an outlier.

use serde::{Deserialize, Serialize};

use super::{Area, BoundaryRange, GroupStats, Threshold};

/// A fitted Exponential, as scipy's closed-form `expon.fit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exponential {
    pub loc: f64,
    pub scale: f64,
}

impl Exponential {
    /// Fits from a group's statistics. The caller handles constant groups, which cannot be fitted.
    pub fn fit(stats: &GroupStats) -> Exponential {
        Exponential {
            loc: stats.min,
            scale: stats.mean - stats.min,
        }
    }

    fn ppf(&self, q: f64) -> f64 {
        self.loc - self.scale * (-q).ln_1p()
    }

    /// MLTK's ranges: `[-inf, min, 0]` (unless only `upper_threshold` is given) and
    /// `[ppf(1 - t), inf, round(t, 4)]`. `lower_threshold` has no tail of its own: its value is ignored.
    pub fn boundaries(&self, threshold: Threshold, integral: bool) -> Vec<BoundaryRange> {
        let mut out = Vec::with_capacity(2);
        self.boundaries_into(threshold, integral, &mut out);
        out
    }

    /// [`Exponential::boundaries`], appended to `out`.
    #[inline]
    pub fn boundaries_into(
        &self,
        threshold: Threshold,
        integral: bool,
        out: &mut Vec<BoundaryRange>,
    ) {
        let below_min = BoundaryRange {
            begin: f64::NEG_INFINITY,
            end: self.loc,
            area: Area::Zero,
            end_integral: integral,
            begin_integral: false,
        };
        let upper = |u: f64| BoundaryRange {
            begin: self.ppf(1.0 - u),
            end: f64::INFINITY,
            area: Area::Rounded(u),
            end_integral: false,
            begin_integral: false,
        };
        match threshold {
            Threshold::Total(t) => out.extend([below_min, upper(t)]),
            Threshold::Lower(_) => out.push(below_min),
            Threshold::Upper(u) => out.push(upper(u)),
            Threshold::LowerUpper(_, u) => out.extend([below_min, upper(u)]),
        }
    }

    pub fn pdf(&self, x: f64) -> f64 {
        if x < self.loc {
            0.0
        } else {
            (-(x - self.loc) / self.scale).exp() / self.scale
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::ranges_text;

    #[test]
    fn reference_values() {
        let mut s = GroupStats::default();
        for x in [
            12.0, 15.0, 9.0, 20.0, 18.0, 11.0, 14.0, 16.0, 13.0, 17.0, 10.0, 19.0, 22.0, 8.0, 15.0,
        ] {
            s.push(x);
        }
        let e = Exponential::fit(&s);
        assert_eq!((e.loc, e.scale), (8.0, 6.6));
        assert_eq!(
            ranges_text(&e.boundaries(Threshold::Total(0.01), true)),
            "-Infinity:8:0\n38.3941:Infinity:0.01"
        );
        assert_eq!(
            ranges_text(&e.boundaries(Threshold::Total(0.1), false)),
            "-Infinity:8.0:0\n23.1971:Infinity:0.1"
        );
        assert!(
            (e.boundaries(Threshold::Total(0.001), false)[1].begin - 53.59118484128209).abs()
                < 1e-12
        );
        assert!((e.pdf(25.0) - 0.011529720053974868).abs() < 1e-15);
        assert_eq!(
            ranges_text(&e.boundaries(Threshold::Total(1e-5), false))[..],
            *"-Infinity:8.0:0\n83.9853:Infinity:0.0"
        );
    }
}
