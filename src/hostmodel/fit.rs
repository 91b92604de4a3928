//! Fitting the per-entity model from streamed rows `(entity, slot, _time, count)`.
//!
//! Rows are summarised as they arrive: per entity and slot the sum and the sum of squares of the counts,
//! per entity its first hour, and one global timeline `hour -> slot`. Silent hours have no row; their
//! zeros are reconstructed analytically at the end: entity `e` was *exposed* in slot `s` for every hour of
//! the timeline from its first hour to the window's end (the last hour seen plus one) that maps to `s`.
//! Hours in which no entity at all has a row (a collection gap) are not counted as zeros.
//!
//! Memory is two `f64` per entity and slot (about 2.7 KB per entity for 168 slots), independent of rows.

use std::collections::HashMap;

use super::{Entity, FitSettings, PerEntityBody, Slot};
use crate::model::{decode_key, key_cmp, natural_cmp};

/// Tuning of the fit (defaults from the quality benchmark).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// Prior variance `tau^2` of an entity's refinements around 1 (shrinkage toward the shared shape).
    pub refine_prior_var: f64,
    /// Pseudo-hours `W0` pulling each entity's over-dispersion toward the median.
    pub phi_pseudo_hours: f64,
    /// Floor of the over-dispersion.
    pub phi_min: f64,
    /// Iterative proportional fitting sweeps.
    pub sweeps: usize,
    /// Shared seasonal profiles (k-means clusters of the entities' shapes).
    pub profiles: usize,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            refine_prior_var: 0.5,
            phi_pseudo_hours: 24.0,
            phi_min: 0.02,
            sweeps: 4,
            profiles: 6,
        }
    }
}

const PHI_MAX: f64 = 50.0;
const RHO_RANGE: (f64, f64) = (1e-4, 1e4);
const FACTOR_FLOOR: f64 = 1e-3;

struct EntAcc {
    name: Vec<u8>,
    first_hour: i64,
    rows: u32,
    /// Daily totals from day `day0` (days since the epoch, UTC).
    day0: i64,
    daily: Vec<f64>,
}

/// Streaming statistics of a per-entity fit.
#[derive(Default)]
pub struct Accumulator {
    entity_index: super::FxMap<Vec<u8>, u32>,
    entities: Vec<EntAcc>,
    slot_index: super::FxMap<Vec<u8>, u32>,
    slot_keys: Vec<Vec<u8>>,
    /// Per slot, per entity: sum and sum of squares of the counts. Slot-major: the rows of one hour
    /// update neighbouring cells.
    sums: Vec<Vec<[f64; 2]>>,
    /// Hour (Unix seconds / 3600) → slot of the first row seen in that hour.
    timeline: super::FxMap<i64, u32>,
    /// Rows whose slot disagreed with the slot already seen for their hour.
    pub slot_conflicts: u64,
    pub rows: u64,
    last: Option<(i64, u32)>,
    /// Per entity (and one more for the start), the entity whose row followed it last: rows come
    /// hour by hour in the same order, so the next row's entity is usually found without hashing.
    successor: Vec<u32>,
    last_entity: Option<u32>,
}

impl Accumulator {
    pub fn entity_count(&self) -> usize {
        self.entities.len()
    }

    pub fn slot_count(&self) -> usize {
        self.slot_keys.len()
    }

    /// Entity names in the order [`Accumulator::push`] numbers them.
    pub fn entity_names(&self) -> impl Iterator<Item = &[u8]> {
        self.entities.iter().map(|e| e.name.as_slice())
    }

    /// Slot keys in the order [`Accumulator::push`] numbers them.
    pub fn slot_keys(&self) -> &[Vec<u8>] {
        &self.slot_keys
    }

    /// Adds one row: `time` in Unix seconds, `slot_key` the encoded by-field values, `x` the count.
    /// Returns the row's entity and slot numbers (first-seen order).
    pub fn push(&mut self, entity: &[u8], slot_key: &[u8], time: f64, x: f64) -> (u32, u32) {
        self.rows += 1;
        let hour = (time / 3600.0).floor() as i64;
        // Rows come hour by hour: most share the previous row's slot.
        let s = match self.last {
            Some((_, s)) if self.slot_keys[s as usize] == slot_key => s,
            _ => match self.slot_index.get(slot_key) {
                Some(&s) => s,
                None => {
                    let s = self.slot_keys.len() as u32;
                    self.slot_index.insert(slot_key.to_vec(), s);
                    self.slot_keys.push(slot_key.to_vec());
                    self.sums.push(Vec::new());
                    s
                }
            },
        };
        if self.last != Some((hour, s)) {
            match self.timeline.get(&hour) {
                Some(&known) if known != s => self.slot_conflicts += 1,
                Some(_) => {}
                None => {
                    self.timeline.insert(hour, s);
                }
            }
            self.last = Some((hour, s));
        }
        let from = self.last_entity.map_or(0, |e| e as usize + 1);
        let guess = self.successor.get(from).copied().unwrap_or(u32::MAX);
        let known = if guess != u32::MAX && self.entities[guess as usize].name == entity {
            Some(guess)
        } else {
            self.entity_index.get(entity).copied()
        };
        let e = match known {
            Some(e) => e as usize,
            None => {
                self.entity_index
                    .insert(entity.to_vec(), self.entities.len() as u32);
                self.entities.push(EntAcc {
                    name: entity.to_vec(),
                    first_hour: hour,
                    rows: 0,
                    day0: hour.div_euclid(24),
                    daily: Vec::new(),
                });
                self.entities.len() - 1
            }
        };
        if self.successor.len() <= self.entities.len() {
            self.successor.resize(self.entities.len() + 1, u32::MAX);
        }
        self.successor[from] = e as u32;
        self.last_entity = Some(e as u32);
        let acc = &mut self.entities[e];
        acc.first_hour = acc.first_hour.min(hour);
        acc.rows += 1;
        let sums = &mut self.sums[s as usize];
        if sums.len() <= e {
            sums.resize(e + 1, [0.0; 2]);
        }
        sums[e][0] += x;
        sums[e][1] += x * x;
        let day = hour.div_euclid(24);
        if day < acc.day0 {
            let shift = (acc.day0 - day) as usize;
            acc.daily.splice(0..0, std::iter::repeat_n(0.0, shift));
            acc.day0 = day;
        }
        let d = (day - acc.day0) as usize;
        if acc.daily.len() <= d {
            acc.daily.resize(d + 1, 0.0);
        }
        acc.daily[d] += x;
        (e as u32, s)
    }

    /// Fits the model. `threshold` and `min_increase` are stored as the apply defaults.
    // Slot loops index several parallel arrays at once: clearer by index than zipped.
    #[allow(clippy::needless_range_loop)]
    pub fn finish(
        self,
        entity_field: &str,
        cfg: &FitConfig,
        threshold: f64,
        min_increase: f64,
    ) -> Option<PerEntityBody> {
        if self.entities.is_empty() || self.timeline.is_empty() {
            return None;
        }
        let n_slots = self.slot_keys.len();

        // Slots in natural order, and each by-field's values.
        let mut slot_order: Vec<usize> = (0..n_slots).collect();
        slot_order.sort_by(|&a, &b| key_cmp(&self.slot_keys[a], &self.slot_keys[b]));
        let mut new_slot = vec![0usize; n_slots];
        for (new, &old) in slot_order.iter().enumerate() {
            new_slot[old] = new;
        }
        let n_fields = decode_key(&self.slot_keys[0]).len();
        let mut field_values: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n_fields];
        for k in &self.slot_keys {
            for (j, v) in decode_key(k).into_iter().enumerate().take(n_fields) {
                field_values[j].push(v.to_vec());
            }
        }
        for vals in &mut field_values {
            vals.sort_by(|a, b| natural_cmp(a, b));
            vals.dedup();
        }
        let value_index = |j: usize, v: &[u8]| -> u16 {
            field_values[j]
                .binary_search_by(|x| natural_cmp(x, v))
                .unwrap_or(0) as u16
        };
        // slot (new order) → field value indices
        let slot_values: Vec<Vec<u16>> = slot_order
            .iter()
            .map(|&old| {
                decode_key(&self.slot_keys[old])
                    .into_iter()
                    .enumerate()
                    .take(n_fields)
                    .map(|(j, v)| value_index(j, v))
                    .collect()
            })
            .collect();
        let offsets: Vec<usize> = field_values
            .iter()
            .scan(0, |n, v| {
                let o = *n;
                *n += v.len();
                Some(o)
            })
            .collect();
        let n_refine: usize = field_values.iter().map(|v| v.len()).sum();

        // Exposure: hours per slot from each distinct first hour to the window's end.
        let mut hours: Vec<(i64, usize)> = self
            .timeline
            .iter()
            .map(|(&h, &s)| (h, new_slot[s as usize]))
            .collect();
        hours.sort_unstable();
        let first_hour = hours[0].0;
        let last_hour = hours[hours.len() - 1].0;
        let mut firsts: Vec<i64> = self.entities.iter().map(|e| e.first_hour).collect();
        firsts.sort_unstable();
        firsts.dedup();
        let mut exposure_at: HashMap<i64, Vec<u32>> = HashMap::with_capacity(firsts.len());
        let mut running = vec![0u32; n_slots];
        let mut hi = hours.len();
        for &f in firsts.iter().rev() {
            while hi > 0 && hours[hi - 1].0 >= f {
                hi -= 1;
                running[hours[hi].1] += 1;
            }
            exposure_at.insert(f, running.clone());
        }

        // Days of the timeline, each with its (hour, slot)s; and on how many days each by-field value
        // occurs (its number of roughly independent observations: hours of one day move together).
        let day_first = first_hour.div_euclid(24);
        let n_days = (last_hour.div_euclid(24) - day_first + 1) as usize;
        let mut day_hours: Vec<Vec<(i64, usize)>> = vec![Vec::new(); n_days];
        for &(h, s) in &hours {
            day_hours[(h.div_euclid(24) - day_first) as usize].push((h, s));
        }
        let mut value_days = vec![0.0f64; n_refine];
        for day in &day_hours {
            let mut seen = vec![false; n_refine];
            for &(_, s) in day {
                for (j, &v) in slot_values[s].iter().enumerate() {
                    seen[offsets[j] + v as usize] = true;
                }
            }
            for (v, &b) in seen.iter().enumerate() {
                if b {
                    value_days[v] += 1.0;
                }
            }
        }
        let timeline_hours = hours.len() as f64;

        // Per entity, in the new slot order: n, S1, S2.
        struct Work {
            n: Vec<f64>,
            s1: Vec<f64>,
            s2: Vec<f64>,
            level: f64,
            hours: f64,
        }
        let mut work: Vec<Work> = self
            .entities
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let exp = &exposure_at[&e.first_hour];
                let mut n = vec![0.0; n_slots];
                let mut s1 = vec![0.0; n_slots];
                let mut s2 = vec![0.0; n_slots];
                for old in 0..n_slots {
                    let s = new_slot[old];
                    n[s] = exp[s] as f64;
                    if let Some(&[a, b]) = self.sums[old].get(i) {
                        s1[s] = a;
                        s2[s] = b;
                    }
                }
                // A row in an hour the timeline gave another slot still counts: make room for it.
                for s in 0..n_slots {
                    if s1[s] > 0.0 && n[s] < 1.0 {
                        n[s] = 1.0;
                    }
                }
                let hours: f64 = n.iter().sum();
                let total: f64 = s1.iter().sum();
                Work {
                    level: if hours > 0.0 { total / hours } else { 0.0 },
                    n,
                    s1,
                    s2,
                    hours,
                }
            })
            .collect();

        // Population totals per slot.
        let mut tot_n = vec![0.0; n_slots];
        let mut pop_s1 = vec![0.0; n_slots];
        let mut pop_s2 = vec![0.0; n_slots];
        for w in &work {
            for s in 0..n_slots {
                tot_n[s] += w.n[s];
                pop_s1[s] += w.s1[s];
                pop_s2[s] += w.s2[s];
            }
        }
        // Shared seasonal profiles: k-means of the entities' slot/level ratios, then each entity takes
        // the profile under which its counts are most likely.
        // Only entities whose days are alike shape the profiles: a host that is absent on most days
        // would otherwise found a profile of its own absences.
        let day_dispersion: Vec<f64> = work
            .iter()
            .zip(&self.entities)
            .map(|(w, acc)| {
                let (mut q, mut m1, mut m2) = (0.0, 0.0, 0.0);
                for (d, day) in day_hours.iter().enumerate() {
                    let day_no = day_first + d as i64;
                    if day_no < acc.first_hour.div_euclid(24) {
                        continue;
                    }
                    let e: f64 = day
                        .iter()
                        .filter(|(h, _)| *h >= acc.first_hour)
                        .map(|&(_, s)| if w.n[s] > 0.0 { w.s1[s] / w.n[s] } else { 0.0 })
                        .sum();
                    let o = if day_no >= acc.day0 {
                        acc.daily
                            .get((day_no - acc.day0) as usize)
                            .copied()
                            .unwrap_or(0.0)
                    } else {
                        0.0
                    };
                    q += (o - e) * (o - e);
                    m1 += e;
                    m2 += e * e;
                }
                if m2 > 0.0 {
                    ((q - m1) / m2).max(0.0)
                } else {
                    f64::INFINITY
                }
            })
            .collect();
        let stats: Vec<EntityStats> = work
            .iter()
            .zip(&day_dispersion)
            .map(|(w, &dd)| EntityStats {
                n: &w.n,
                s1: &w.s1,
                level: w.level,
                steady: dd <= STEADY_DAY_DISPERSION,
            })
            .collect();
        let (profiles, assignment) = shared_profiles(&stats, &tot_n, cfg.profiles);
        drop(stats);

        // Per entity: refinements by shrunk IPF, then the over-dispersion.
        let mut phi_hat = Vec::with_capacity(work.len());
        let mut refines = Vec::with_capacity(work.len());
        let mut mu = vec![0.0; n_slots];
        let mut obs = vec![0.0; n_refine];
        let mut exp = vec![0.0; n_refine];
        for ((w, &k), acc) in work.iter_mut().zip(&assignment).zip(&self.entities) {
            let factor = &profiles[k];
            let mut rho = vec![1.0f64; n_refine];
            // Over-dispersion before refinement, of hours and of whole days, for the shrinkage.
            let phi_hour = {
                let (mut q, mut m1, mut m2) = (0.0, 0.0, 0.0);
                for s in 0..n_slots {
                    let m = w.level * factor[s];
                    q += (w.s2[s] - 2.0 * m * w.s1[s] + w.n[s] * m * m).max(0.0);
                    m1 += w.n[s] * m;
                    m2 += w.n[s] * m * m;
                }
                if m2 > 0.0 {
                    ((q - m1) / m2).max(0.0)
                } else {
                    0.0
                }
            };
            let phi_day = {
                let (mut q, mut m1, mut m2) = (0.0, 0.0, 0.0);
                for (d, day) in day_hours.iter().enumerate() {
                    let day_no = day_first + d as i64;
                    if day_no < acc.first_hour.div_euclid(24) {
                        continue;
                    }
                    let e: f64 = day
                        .iter()
                        .filter(|(h, _)| *h >= acc.first_hour)
                        .map(|&(_, s)| w.level * factor[s])
                        .sum();
                    let o = acc
                        .daily
                        .get((day_no - acc.day0).max(0) as usize)
                        .copied()
                        .filter(|_| day_no >= acc.day0)
                        .unwrap_or(0.0);
                    q += (o - e) * (o - e);
                    m1 += e;
                    m2 += e * e;
                }
                if m2 > 0.0 {
                    ((q - m1) / m2).max(0.0)
                } else {
                    0.0
                }
            };
            let share = (w.hours / timeline_hours).min(1.0);
            let phi_unit = phi_hour.max(phi_day);
            for (j, &off) in offsets.iter().enumerate() {
                obs[off..off + field_values[j].len()].fill(0.0);
                for s in 0..n_slots {
                    obs[off + slot_values[s][j] as usize] += w.s1[s];
                }
            }
            let base = |s: usize, rho: &[f64]| {
                let mut m = w.level * factor[s];
                for (j, &v) in slot_values[s].iter().enumerate() {
                    m *= rho[offsets[j] + v as usize];
                }
                m
            };
            if w.level > 0.0 {
                for _ in 0..cfg.sweeps {
                    for (j, &off) in offsets.iter().enumerate() {
                        let len = field_values[j].len();
                        exp[off..off + len].fill(0.0);
                        for s in 0..n_slots {
                            let v = off + slot_values[s][j] as usize;
                            exp[v] += w.n[s] * base(s, &rho) / rho[v];
                        }
                        // Credibility: rho = 1 + Z (O/E - 1), Z = tau^2 / (tau^2 + Var(O/E)), with
                        // Var(O/E) = 1/E (Poisson) + phi / (days this value was observed).
                        for v in off..off + len {
                            if exp[v] <= 0.0 {
                                rho[v] = 1.0;
                                continue;
                            }
                            let days = (value_days[v] * share).max(1.0);
                            let var = 1.0 / exp[v] + phi_unit / days;
                            let z = cfg.refine_prior_var / (cfg.refine_prior_var + var);
                            rho[v] =
                                (1.0 + z * (obs[v] / exp[v] - 1.0)).clamp(RHO_RANGE.0, RHO_RANGE.1);
                        }
                    }
                }
            }
            let (mut q, mut m1, mut m2) = (0.0, 0.0, 0.0);
            for s in 0..n_slots {
                mu[s] = base(s, &rho);
                let (n, m) = (w.n[s], mu[s]);
                q += (w.s2[s] - 2.0 * m * w.s1[s] + n * m * m).max(0.0);
                m1 += n * m;
                m2 += n * m * m;
            }
            let p = (1 + n_refine) as f64;
            let dof = if w.hours > 2.0 * p {
                w.hours / (w.hours - p)
            } else {
                2.0
            };
            let ph = if m2 > 0.0 {
                ((q * dof - m1) / m2).max(0.0)
            } else {
                0.0
            };
            phi_hat.push((ph, m2));
            refines.push(rho);
        }
        // Pool the over-dispersion toward the median of the informative entities.
        let mut informative: Vec<f64> = work
            .iter()
            .zip(&phi_hat)
            .filter(|(w, (_, m2))| w.hours > 0.0 && m2 / w.hours >= 0.25)
            .map(|(_, (ph, _))| *ph)
            .collect();
        informative.sort_by(|a, b| a.total_cmp(b));
        let phi_median = if informative.is_empty() {
            0.5
        } else {
            informative[informative.len() / 2]
        };

        let mut entities: Vec<Entity> = work
            .iter()
            .zip(phi_hat)
            .zip(refines)
            .zip(&self.entities)
            .zip(&assignment)
            .map(|((((w, (ph, m2)), rho), acc), &k)| {
                let m2bar = if w.hours > 0.0 { m2 / w.hours } else { 0.0 };
                let weight = w.hours * m2bar / (m2bar + 1.0);
                let phi = (weight * ph + cfg.phi_pseudo_hours * phi_median)
                    / (weight + cfg.phi_pseudo_hours);
                Entity {
                    name: String::from_utf8_lossy(&acc.name).into_owned(),
                    level: w.level as f32,
                    phi: phi.clamp(cfg.phi_min, PHI_MAX) as f32,
                    hours: w.hours as u32,
                    active_hours: acc.rows,
                    profile: k as u8,
                    refine: rho.into_iter().map(|r| r as f32).collect(),
                }
            })
            .collect();
        entities.sort_by(|a, b| a.name.cmp(&b.name));

        let slots = (0..n_slots)
            .map(|s| {
                let old = slot_order[s];
                let n = tot_n[s].max(1.0);
                let m = pop_s1[s] / n;
                let v = (pop_s2[s] / n - m * m).max(0.0);
                let phi = if m > 0.0 {
                    ((v - m) / (m * m)).max(cfg.phi_min)
                } else {
                    cfg.phi_min
                };
                Slot {
                    key: self.slot_keys[old].clone(),
                    values: slot_values[s].clone(),
                    pop_mean: m as f32,
                    pop_phi: phi.min(PHI_MAX) as f32,
                }
            })
            .collect();
        Some(PerEntityBody {
            entity_field: entity_field.to_string(),
            window_start: first_hour * 3600,
            window_end: (last_hour + 1) * 3600,
            field_values: field_values
                .into_iter()
                .map(|vals| {
                    vals.into_iter()
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                        .collect()
                })
                .collect(),
            slots,
            profiles: profiles
                .iter()
                .map(|p| p.iter().map(|&f| f as f32).collect())
                .collect(),
            entities,
            threshold,
            min_increase,
            settings: FitSettings {
                refine_prior_var: cfg.refine_prior_var,
                phi_pseudo_hours: cfg.phi_pseudo_hours,
                phi_min: cfg.phi_min,
                phi_median,
            },
        })
    }
}

/// What [`shared_profiles`] needs of an entity.
struct EntityStats<'a> {
    /// Exposure hours and count sum per slot.
    n: &'a [f64],
    s1: &'a [f64],
    level: f64,
    /// Its daily totals vary little around its own shape (see [`STEADY_DAY_DISPERSION`]).
    steady: bool,
}

/// Entities whose daily totals have a squared coefficient of variation (beyond Poisson) above this are
/// not used to shape the profiles; they are still assigned one.
const STEADY_DAY_DISPERSION: f64 = 0.3;

/// Entities with at least this many connections in total shape the profiles.
const PROFILE_MIN_TOTAL: f64 = 50.0;

/// Weighted mean of the entities' slot/level ratios, normalised to an exposure-weighted mean of 1.
fn profile_of(ents: &[&EntityStats], tot_n: &[f64]) -> Vec<f64> {
    let n_slots = tot_n.len();
    let mut num = vec![0.0; n_slots];
    let mut den = vec![0.0; n_slots];
    for e in ents {
        for s in 0..n_slots {
            if e.level > 0.0 && e.n[s] > 0.0 {
                let expected = e.n[s] * e.level;
                let weight = expected / (expected + 5.0);
                num[s] += weight * e.s1[s] / expected;
                den[s] += weight;
            }
        }
    }
    let mut f: Vec<f64> = (0..n_slots)
        .map(|s| if den[s] > 0.0 { num[s] / den[s] } else { 1.0 })
        .collect();
    let (a, b) = (0..n_slots).fold((0.0, 0.0), |(a, b), s| (a + f[s] * tot_n[s], b + tot_n[s]));
    let norm = if a > 0.0 && b > 0.0 { a / b } else { 1.0 };
    for x in &mut f {
        *x = (*x / norm).max(FACTOR_FLOOR);
    }
    f
}

/// Up to `k` shared seasonal profiles and each entity's profile.
///
/// The profiles are k-means clusters (in square-root space, which steadies Poisson noise) of the
/// slot/level ratios of the entities with enough data, seeded by farthest-point selection so the result
/// is deterministic. Every entity then takes the profile with the smallest Poisson deviance of its own
/// counts under `L(e) F_k(s)`.
fn shared_profiles(ents: &[EntityStats], tot_n: &[f64], k: usize) -> (Vec<Vec<f64>>, Vec<usize>) {
    let n_slots = tot_n.len();
    let rich: Vec<&EntityStats> = ents
        .iter()
        .filter(|e| e.steady && e.level > 0.0 && e.s1.iter().sum::<f64>() >= PROFILE_MIN_TOTAL)
        .collect();
    let all: Vec<&EntityStats> = ents.iter().collect();
    if rich.len() < 2 * k.max(1) || k <= 1 {
        return (vec![profile_of(&all, tot_n)], vec![0; ents.len()]);
    }
    let point = |e: &EntityStats| -> Vec<f64> {
        (0..n_slots)
            .map(|s| {
                if e.n[s] > 0.0 {
                    (e.s1[s] / (e.n[s] * e.level)).sqrt()
                } else {
                    1.0
                }
            })
            .collect()
    };
    let pts: Vec<Vec<f64>> = rich.iter().map(|e| point(e)).collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>();
    // Farthest-point seeding from the point nearest the overall mean.
    let mean: Vec<f64> = (0..n_slots)
        .map(|s| pts.iter().map(|p| p[s]).sum::<f64>() / pts.len() as f64)
        .collect();
    let first = (0..pts.len())
        .min_by(|&a, &b| dist(&pts[a], &mean).total_cmp(&dist(&pts[b], &mean)))
        .unwrap_or(0);
    let mut centers = vec![pts[first].clone()];
    let mut nearest: Vec<f64> = pts.iter().map(|p| dist(p, &centers[0])).collect();
    while centers.len() < k {
        let far = (0..pts.len())
            .max_by(|&a, &b| nearest[a].total_cmp(&nearest[b]))
            .unwrap_or(0);
        centers.push(pts[far].clone());
        for (i, p) in pts.iter().enumerate() {
            nearest[i] = nearest[i].min(dist(p, &centers[centers.len() - 1]));
        }
    }
    let mut label = vec![0usize; pts.len()];
    for _ in 0..20 {
        let mut changed = false;
        for (i, p) in pts.iter().enumerate() {
            let best = (0..centers.len())
                .min_by(|&a, &b| dist(p, &centers[a]).total_cmp(&dist(p, &centers[b])))
                .unwrap_or(0);
            changed |= best != label[i];
            label[i] = best;
        }
        for (c, center) in centers.iter_mut().enumerate() {
            let members: Vec<&Vec<f64>> = pts
                .iter()
                .zip(&label)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| p)
                .collect();
            if members.is_empty() {
                continue;
            }
            for s in 0..n_slots {
                center[s] = members.iter().map(|p| p[s]).sum::<f64>() / members.len() as f64;
            }
        }
        if !changed {
            break;
        }
    }
    let mut profiles: Vec<Vec<f64>> = (0..centers.len())
        .filter_map(|c| {
            let members: Vec<&EntityStats> = rich
                .iter()
                .zip(&label)
                .filter(|(_, l)| **l == c)
                .map(|(e, _)| *e)
                .collect();
            (!members.is_empty()).then(|| profile_of(&members, tot_n))
        })
        .collect();
    if profiles.is_empty() {
        profiles.push(profile_of(&all, tot_n));
    }
    // Each entity: the profile of smallest Poisson deviance, sum n mu - S1 ln mu.
    let assignment = ents
        .iter()
        .map(|e| {
            if e.level <= 0.0 {
                return 0;
            }
            let nll = |f: &[f64]| {
                (0..n_slots)
                    .map(|s| {
                        let mu = e.level * f[s];
                        e.n[s] * mu - e.s1[s] * mu.ln()
                    })
                    .sum::<f64>()
            };
            (0..profiles.len())
                .min_by(|&a, &b| nll(&profiles[a]).total_cmp(&nll(&profiles[b])))
                .unwrap_or(0)
        })
        .collect();
    (profiles, assignment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::encode_key;

    fn key(vals: &[&str]) -> Vec<u8> {
        let mut k = Vec::new();
        encode_key(vals.iter().map(|v| v.as_bytes()), &mut k);
        k
    }

    /// 4 weeks of hours; slot = hour of day only (24 slots) to keep tests small.
    fn hour_slot(h: i64) -> Vec<u8> {
        key(&[&format!("{:02}", h % 24)])
    }

    #[test]
    fn silent_hours_count_as_zeros_from_first_hour() {
        let mut acc = Accumulator::default();
        // "busy" has a row every hour (keeps the timeline complete); "quiet" appears at hour 240 and
        // then sends 4 connections once a day at 10:00.
        for h in 0..672i64 {
            acc.push(b"busy", &hour_slot(h), (h * 3600) as f64, 50.0);
            if h >= 240 && h % 24 == 10 {
                acc.push(b"quiet", &hour_slot(h), (h * 3600 + 5) as f64, 4.0);
            }
        }
        let body = acc.finish("src", &FitConfig::default(), 1e-4, 0.0).unwrap();
        let q = body.entities.iter().find(|e| e.name == "quiet").unwrap();
        // First row at hour 250 (10:00 of day 10): exposed from there to hour 671, 422 hours, 18 of
        // them with 4 connections.
        assert_eq!(q.hours, 422);
        assert_eq!(q.active_hours, 18);
        assert!((q.level as f64 - 18.0 * 4.0 / 422.0).abs() < 1e-6);
        assert_eq!(body.window_end, 672 * 3600);
        // Its 10:00 slot learns ~4 (shrunk a little), its 03:00 slot stays near zero.
        let offsets = body.offsets();
        let e = body.entities.iter().position(|e| e.name == "quiet");
        let s10 = body
            .slots
            .iter()
            .position(|s| s.key == hour_slot(10))
            .unwrap();
        let s03 = body
            .slots
            .iter()
            .position(|s| s.key == hour_slot(3))
            .unwrap();
        let m10 = body.predict(&offsets, e, s10).mu;
        let m03 = body.predict(&offsets, e, s03).mu;
        assert!(m10 > 2.5 && m10 < 4.5, "{m10}");
        assert!(m03 < 0.2, "{m03}");
    }

    #[test]
    fn shrinkage_pulls_thin_history_toward_the_shared_shape() {
        let mut acc = Accumulator::default();
        // 40 office hosts: 10 connections 9-17, nothing else. One host "night" has a single
        // 3-count hour at 02:00 and otherwise the office pattern; one host "batch" sends 200 at 02:00
        // every night.
        for h in 0..672i64 {
            let hod = h % 24;
            for i in 0..40 {
                if (9..17).contains(&hod) {
                    acc.push(
                        format!("w{i}").as_bytes(),
                        &hour_slot(h),
                        (h * 3600) as f64,
                        10.0,
                    );
                }
            }
            if (9..17).contains(&hod) {
                acc.push(b"night", &hour_slot(h), (h * 3600) as f64, 10.0);
            }
            if h == 26 {
                acc.push(b"night", &hour_slot(h), (h * 3600) as f64, 3.0);
            }
            if hod == 2 {
                acc.push(b"batch", &hour_slot(h), (h * 3600) as f64, 200.0);
            }
        }
        let body = acc.finish("src", &FitConfig::default(), 1e-4, 0.0).unwrap();
        let offsets = body.offsets();
        let idx = |n: &str| body.entities.iter().position(|e| e.name == n);
        let s02 = body
            .slots
            .iter()
            .position(|s| s.key == hour_slot(2))
            .unwrap();
        // One event in 28 nights: the expected count moves only a little above its raw mean (3/28).
        let night = body.predict(&offsets, idx("night"), s02).mu;
        assert!(night > 0.05 && night < 0.6, "{night}");
        // 28 nights of 200: the host's own shape wins.
        let batch = body.predict(&offsets, idx("batch"), s02).mu;
        assert!(batch > 180.0 && batch < 210.0, "{batch}");
    }

    #[test]
    fn unseen_entities_use_the_population_of_the_slot() {
        let mut acc = Accumulator::default();
        for h in 0..168i64 {
            acc.push(b"a", &hour_slot(h), (h * 3600) as f64, 10.0);
            acc.push(b"b", &hour_slot(h), (h * 3600) as f64, 30.0);
        }
        let body = acc.finish("src", &FitConfig::default(), 1e-4, 0.0).unwrap();
        let d = body.predict(&body.offsets(), None, 0);
        assert!((d.mu - 20.0).abs() < 1e-4);
        // Variance 100 around 20: phi = (100 - 20) / 400.
        assert!((d.phi - 0.2).abs() < 1e-6);
    }

    #[test]
    fn overdispersion_is_estimated() {
        let mut acc = Accumulator::default();
        // Alternating 2 and 18 (mean 10, variance 64): phi ~ (64 - 10) / 100 = 0.54.
        for h in 0..672i64 {
            let x = if (h / 24) % 2 == 0 { 2.0 } else { 18.0 };
            acc.push(b"x", &hour_slot(h), (h * 3600) as f64, x);
        }
        let body = acc.finish("src", &FitConfig::default(), 1e-4, 0.0).unwrap();
        let phi = body.entities[0].phi as f64;
        assert!(phi > 0.45 && phi < 0.65, "{phi}");
    }
}
