//! The per-group fits of `fit`, on several threads. Each group's fit is a pure function of its values and
//! the command's options, so the results, gathered in group order, are exactly one thread's.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::density::auto;
use crate::density::reservoir::Reservoir;
use crate::density::{
    BoundaryRange, DistKind, Distribution, GroupStats, Metric, Normal, REPLACE_ZERO_STD, Threshold,
};

/// Upper bound on fitting threads: a search head runs other searches too (not measured beyond 2 cores).
const MAX_THREADS: usize = 8;

/// What every group's fit shares.
pub struct FitOptions<'a> {
    pub dist: DistKind,
    pub metric: Metric,
    pub exclude: &'a [DistKind],
    pub max_kde: usize,
    pub seed: u64,
    pub thresholds: &'a [Threshold],
    /// The training column was integer-typed.
    pub integral: bool,
}

/// One group's fit.
pub struct Fitted {
    pub dist: Distribution,
    pub distance: f64,
    pub boundaries: Vec<Vec<BoundaryRange>>,
    /// The distribution could not be fitted, so the group got MLTK's degenerate Normal.
    pub fallback: bool,
}

/// Fits one group from its exact statistics and its reservoir of values (input order).
pub fn fit_one(o: &FitOptions, s: &GroupStats, values: &[f64]) -> Fitted {
    let fitted = if o.dist == DistKind::Auto {
        auto::select(values, o.metric, o.exclude, o.max_kde, o.seed).map(|sel| {
            let kind = sel.chosen.kind();
            // Normal and Exponential are refitted on the exact statistics of every row, not
            // only the reservoir the selection compared.
            let dist = match kind {
                DistKind::Normal | DistKind::Exponential => {
                    Distribution::fit(kind, s, values, o.max_kde, o.seed)
                        .unwrap_or_else(|_| sel.chosen.clone().into())
                }
                _ => sel.chosen.clone().into(),
            };
            (dist, sel.distance)
        })
    } else {
        Distribution::fit(o.dist, s, values, o.max_kde, o.seed).map(|d| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let distance = d.distance(o.metric, &sorted);
            (d, distance)
        })
    };
    let (dist, distance, fallback) = match fitted {
        Ok((d, distance)) => (d, distance, false),
        // Our documented fix: a group the distribution cannot describe (constant data) falls back
        // to MLTK's degenerate Normal instead of aborting the whole fit.
        Err(_) => (
            Distribution::Normal(Normal {
                mean: s.mean,
                std: REPLACE_ZERO_STD,
            }),
            f64::NAN,
            true,
        ),
    };
    let boundaries = o
        .thresholds
        .iter()
        .map(|th| dist.boundaries(*th, o.integral))
        .collect();
    Fitted {
        dist,
        distance,
        boundaries,
        fallback,
    }
}

/// Threads for fitting `groups` groups of `dist`: Normal and Exponential fits are a few operations on
/// the statistics, not worth a thread; the others use the cores this process may run on
/// (`SMBDENSITY_FIT_THREADS` overrides, e.g. 1 to measure one thread).
pub fn threads_for(dist: DistKind, groups: usize) -> usize {
    if matches!(dist, DistKind::Normal | DistKind::Exponential) {
        return 1;
    }
    let wanted = std::env::var("SMBDENSITY_FIT_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(MAX_THREADS)
        });
    wanted.min(groups).max(1)
}

/// Groups fitted between two hand-overs: bounds the results held at once, while leaving the threads
/// enough groups to share.
const BATCH: usize = 1024;

/// `fit_one` for every group in `order`, handed to `deliver(g, fit, values)` in that order together with
/// the group's values (taken out of its reservoir). Within a batch, work is handed out largest group
/// first, so one big group does not finish alone at the end.
pub fn fit_each(
    o: &FitOptions,
    order: &[usize],
    stats: &[GroupStats],
    samples: &mut [Reservoir],
    threads: usize,
    mut deliver: impl FnMut(usize, Fitted, Vec<f64>),
) {
    if threads <= 1 || order.len() <= 1 {
        for &g in order {
            let f = fit_one(o, &stats[g], &samples[g].values);
            deliver(g, f, std::mem::take(&mut samples[g].values));
        }
        return;
    }
    for batch in order.chunks(BATCH) {
        for (&g, f) in batch
            .iter()
            .zip(fit_batch(o, batch, stats, samples, threads))
        {
            deliver(g, f, std::mem::take(&mut samples[g].values));
        }
    }
}

/// The fits of `batch`, in its order, on `threads` scoped threads.
fn fit_batch(
    o: &FitOptions,
    batch: &[usize],
    stats: &[GroupStats],
    samples: &[Reservoir],
    threads: usize,
) -> Vec<Fitted> {
    let mut work: Vec<usize> = (0..batch.len()).collect();
    work.sort_by_key(|&k| std::cmp::Reverse(samples[batch[k]].values.len()));
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, Fitted)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(batch.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while let Some(&k) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let g = batch[k];
                        mine.push((k, fit_one(o, &stats[g], &samples[g].values)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut slots: Vec<Option<Fitted>> = (0..batch.len()).map(|_| None).collect();
    for (k, f) in done.into_iter().flatten() {
        slots[k] = Some(f);
    }
    slots
        .into_iter()
        .map(|f| f.expect("every group was fitted"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::rng::Rng;

    /// Groups of assorted shapes and sizes (constant ones included), as reservoirs.
    fn groups(n: usize, max_len: u64, seed: u64) -> (Vec<GroupStats>, Vec<Reservoir>) {
        let mut rng = Rng::new(seed);
        let mut stats = Vec::new();
        let mut samples = Vec::new();
        for g in 0..n {
            let len = 1 + rng.below(max_len) as usize;
            let values: Vec<f64> = (0..len)
                .map(|_| match g % 4 {
                    0 => rng.poisson(20.0) as f64,
                    1 => (rng.standard_normal() * 1000.0).round() / 100.0,
                    2 => 5.0,
                    _ => rng.below(3) as f64 * 40.0 + rng.poisson(3.0) as f64,
                })
                .collect();
            let mut s = GroupStats::default();
            values.iter().for_each(|v| s.push(*v));
            stats.push(s);
            samples.push(Reservoir::resume(values, len as u64));
        }
        (stats, samples)
    }

    /// Everything a fit delivers, in delivery order, as text (NaN distances compare equal).
    fn run(dist: DistKind, n: usize, max_len: u64, threads: usize) -> Vec<String> {
        let (stats, mut samples) = groups(n, max_len, 7);
        let thresholds = [Threshold::Total(0.01), Threshold::Lower(0.005)];
        let o = FitOptions {
            dist,
            metric: Metric::Wasserstein,
            exclude: &[],
            max_kde: 10_000,
            seed: 0,
            thresholds: &thresholds,
            integral: false,
        };
        // A group order that is not the identity, as after sorting keys.
        let order: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        let mut out = Vec::new();
        fit_each(&o, &order, &stats, &mut samples, threads, |g, f, values| {
            out.push(format!(
                "{g} {:?} {:?} {:?} {} {values:?}",
                f.dist,
                f.distance.to_bits(),
                f.boundaries,
                f.fallback
            ));
        });
        assert!(samples.iter().all(|s| s.values.is_empty()));
        out
    }

    #[test]
    fn threads_give_the_sequential_result_in_group_order() {
        for dist in [DistKind::Auto, DistKind::Beta, DistKind::GaussianKde] {
            let one = run(dist, 41, 300, 1);
            assert_eq!(one.len(), 41);
            assert_eq!(run(dist, 41, 300, 2), one, "{dist:?}");
            assert_eq!(run(dist, 41, 300, 3), one, "{dist:?}");
        }
        // More groups than one batch.
        let n = BATCH + 77;
        assert_eq!(
            run(DistKind::GaussianKde, n, 12, 2),
            run(DistKind::GaussianKde, n, 12, 1)
        );
    }

    #[test]
    fn normal_and_exponential_stay_on_one_thread() {
        assert_eq!(threads_for(DistKind::Normal, 1000), 1);
        assert_eq!(threads_for(DistKind::Exponential, 1000), 1);
        assert_eq!(threads_for(DistKind::Beta, 1), 1);
    }
}
