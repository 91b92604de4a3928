//! Special functions for the distributions: the standard normal CDF, its inverse and density.
//! Thin wrappers over `libm` (erfc, accurate to an ulp like Cephes) and `statrs` (erfc_inv), named as
//! scipy names them so the formulas read like MLTK's.

use statrs::function::erf;

/// scipy's `ndtri`: the inverse of the standard normal CDF.
pub fn ndtri(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    -std::f64::consts::SQRT_2 * erf::erfc_inv(2.0 * p)
}

/// [`ndtri`], remembering the last few arguments: boundaries call it with the same few thresholds for
/// every group.
pub fn ndtri_memo(p: f64) -> f64 {
    use std::cell::Cell;
    thread_local! {
        static MEMO: Cell<([(u64, f64); 4], usize)> = const { Cell::new(([(u64::MAX, 0.0); 4], 0)) };
    }
    if p.is_nan() {
        return ndtri(p);
    }
    MEMO.with(|m| {
        let (mut memo, next) = m.get();
        let bits = p.to_bits();
        if let Some((_, v)) = memo.iter().find(|(b, _)| *b == bits) {
            return *v;
        }
        let v = ndtri(p);
        memo[next] = (bits, v);
        m.set((memo, (next + 1) % memo.len()));
        v
    })
}

/// scipy's `ndtr`: the standard normal CDF, accurate in both tails.
pub fn ndtr(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// The standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndtri_matches_scipy() {
        // scipy.special.ndtri reference values.
        let cases = [
            (0.005, -2.5758293035489004),
            (0.0005, -3.2905267314918945),
            (0.995, 2.5758293035489),
            (0.5, 0.0),
            (1e-9, -5.997807015007686),
            (0.025, -1.9599639845400545),
        ];
        for (p, want) in cases {
            let got = ndtri(p);
            assert!(
                (got - want).abs() <= 1e-14 * want.abs().max(1.0),
                "ndtri({p}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn ndtr_inverts_ndtri() {
        for p in [1e-12, 1e-6, 0.001, 0.3, 0.7, 0.999] {
            assert!((ndtr(ndtri(p)) - p).abs() <= 1e-13 * p, "p={p}");
        }
    }
}
