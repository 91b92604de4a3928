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
#[inline]
pub fn ndtri_memo(p: f64) -> f64 {
    use std::cell::Cell;
    const SLOTS: usize = 4;
    thread_local! {
        static MEMO: [Cell<(u64, f64)>; SLOTS] = const { [const { Cell::new((u64::MAX, 0.0)) }; SLOTS] };
        static NEXT: Cell<usize> = const { Cell::new(0) };
    }
    if p.is_nan() {
        return ndtri(p);
    }
    let bits = p.to_bits();
    MEMO.with(|m| {
        if let Some(v) = m.iter().map(Cell::get).find(|(b, _)| *b == bits) {
            return v.1;
        }
        let v = ndtri(p);
        NEXT.with(|n| {
            m[n.get()].set((bits, v));
            n.set((n.get() + 1) % SLOTS);
        });
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
