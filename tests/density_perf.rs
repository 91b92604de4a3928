//! Timing of the KDE, Beta and auto fits on 10,000-point groups (ignored by default; run with
//! `cargo test --release --test density_perf -- --ignored --nocapture`).

use std::time::Instant;

use smbdensity::density::auto::{distance, kde_distance, select};
use smbdensity::density::beta::Beta;
use smbdensity::density::kde::GaussianKde;
use smbdensity::density::{Metric, Threshold};

/// A small deterministic generator so the data is the same on every run.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Poisson by inversion (fine for the means used here).
    fn poisson(&mut self, mean: f64) -> f64 {
        let u = self.uniform();
        let (mut k, mut p) = (0.0, (-mean).exp());
        let mut cdf = p;
        while cdf < u && k < 10.0 * mean + 100.0 {
            k += 1.0;
            p *= mean / k;
            cdf += p;
        }
        k
    }
}

fn counts(seed: u64, n: usize, mean: f64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n).map(|_| r.poisson(mean)).collect()
}

fn floats(seed: u64, n: usize) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| ((100.0 + 15.0 * r.normal()) * 100.0).round() / 100.0)
        .collect()
}

fn time<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    println!("{label:58} {:>9.1} ms", t.elapsed().as_secs_f64() * 1e3);
    v
}

#[test]
#[ignore = "timing only"]
fn kde_beta_auto_timings() {
    let th = [Threshold::Total(0.01), Threshold::Total(0.001)];
    for (name, data) in [
        ("Poisson(50) counts", counts(1, 10_000, 50.0)),
        ("normal floats (2 decimals)", floats(2, 10_000)),
    ] {
        let k = time(&format!("KDE fit, 10k {name}"), || {
            GaussianKde::fit(&data, 10_000, 0).unwrap()
        });
        println!("    {} distinct points", k.points.len());
        for t in th {
            time(&format!("KDE boundaries {t:?}"), || k.boundaries(t));
        }
        time("KDE pdf at 10k points", || {
            data.iter().map(|x| k.pdf(*x)).sum::<f64>()
        });
        let b = time(&format!("Beta fit, 10k {name}"), || {
            Beta::fit(&data).unwrap()
        });
        for t in th {
            time(&format!("Beta boundaries {t:?}"), || b.boundaries(t, false));
        }
        let mut sorted = data.clone();
        sorted.sort_by(f64::total_cmp);
        for m in [Metric::Wasserstein, Metric::KolmogorovSmirnov] {
            time(&format!("  KDE distance ({m:?})"), || {
                kde_distance(m, &sorted, &k)
            });
            time(&format!("  Beta distance ({m:?})"), || {
                distance(m, &sorted, &b)
            });
            let s = time(&format!("auto select ({m:?}), 10k {name}"), || {
                select(&data, m, &[], 10_000, 0).unwrap()
            });
            println!("    chose {:?}, distance {}", s.chosen.kind(), s.distance);
        }
    }
    // The ESCU baseline shape: 168 groups (hour × weekday) of counts.
    let groups: Vec<Vec<f64>> = (0..168)
        .map(|g| counts(100 + g, 10_000, 20.0 + g as f64))
        .collect();
    time(
        "KDE fit + boundaries(0.01), 168 groups × 10k counts",
        || {
            groups
                .iter()
                .map(|g| {
                    GaussianKde::fit(g, 10_000, 0)
                        .unwrap()
                        .boundaries(Threshold::Total(0.01))
                        .len()
                })
                .sum::<usize>()
        },
    );
}
