//! The per-entity count model behind `fit smbdensity <count> by "<slot fields>" entity=<field> dist=negbin`:
//! every entity (source host) gets its own negative-binomial baseline of its hourly count.
//!
//! # The model
//!
//! A *slot* `s` is one combination of the by-field values (for `by "HourOfDay,DayOfWeek"`, an hour of the
//! week). For entity `e` in slot `s` the hourly count is
//!
//! ```text
//! X(e,s) ~ NegBin(mean mu(e,s), over-dispersion phi(e))        Var = mu + phi mu^2
//! mu(e,s) = L(e) * F(s) * prod_j rho(e, j, v_j(s))
//! ```
//!
//! - `L(e)`: the entity's level, its mean count per hour over its training hours, **silent hours included
//!   as zeros** (from its first hour in the training window to the window's end).
//! - `F(s)`: the shared seasonal factor of slot `s` (normalised to mean 1), the average of the entities'
//!   own slot-to-level ratios, each weighted by how much it can say (`w = n L F / (n L F + 5)`).
//! - `rho(e, j, v)`: the entity's refinement for value `v` of by-field `j` (its own hour-of-day and
//!   day-of-week shape), estimated by iterative proportional fitting of the Poisson likelihood with a
//!   Gamma(a, a) prior, i.e. shrunk toward 1 (toward `L(e) F(s)`) by `a` pseudo-counts:
//!   `rho = (observed + a) / (expected_without_rho + a)`. A host with much history in a slot value gets
//!   its own shape; a nearly silent host keeps the shared one.
//! - `phi(e)`: method of moments on the entity's Pearson residuals,
//!   `phi_hat = (sum (x - mu)^2 * K/(K - p) - sum mu) / sum mu^2`, then pooled toward the median over
//!   entities with `W0` pseudo-hours: `phi = (w phi_hat + W0 phi_med) / (w + W0)`, floored at `phi_min`.
//!
//! An entity unseen at fit falls back to the *population* model of its slot: a negative binomial with
//! the mean and variance of every entity-hour of that slot (zeros included).
//!
//! A count `x` is an outlier when `P(X >= x) < threshold` **and** `x >= mu + min_increase`.
//!
//! The model keeps per entity its name, `L`, `phi`, its training hours and one `f32` per by-field value
//! (24 + 7 for hour of day and day of week): about 150 bytes, so 100,000 entities load in milliseconds.

pub mod fit;
pub mod negbin;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use negbin::{Boundary, NegBin};

/// The model kind shown by `listmodels`.
pub const KIND: &str = "PerEntityNegBin";

/// The default `threshold` of a per-entity apply (upper-tail probability), from the quality benchmark.
pub const DEFAULT_THRESHOLD: f64 = 1e-4;
/// The default `min_increase` of a per-entity apply, from the quality benchmark.
pub const DEFAULT_MIN_INCREASE: f64 = 20.0;

/// One slot (by-group): its by-field values and the shared and population parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The by-field values, encoded with [`crate::model::encode_key`].
    pub key: Vec<u8>,
    /// Index of each by-field's value in [`PerEntityBody::field_values`].
    pub values: Vec<u16>,
    /// The population fallback: mean and over-dispersion of all entity-hours of this slot.
    pub pop_mean: f32,
    pub pop_phi: f32,
}

/// One entity's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub name: String,
    /// `L(e)`: mean count per training hour, silent hours included.
    pub level: f32,
    /// `phi(e)`: over-dispersion (variance `mu + phi mu^2`).
    pub phi: f32,
    /// Training hours (first hour seen to the window's end, hours without any data excluded).
    pub hours: u32,
    /// Hours with a row (a non-zero count).
    pub active_hours: u32,
    /// Its shared seasonal profile, an index into [`PerEntityBody::profiles`].
    pub profile: u8,
    /// `rho(e, j, v)` for every by-field value, fields concatenated in by-clause order.
    pub refine: Vec<f32>,
}

/// The fit settings a model was built with (shown by `summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    /// Prior variance `tau^2` of the refinements around 1.
    pub refine_prior_var: f64,
    /// Pseudo-hours `W0` pulling `phi` toward the median.
    pub phi_pseudo_hours: f64,
    pub phi_min: f64,
    /// The pooled median `phi` over entities.
    pub phi_median: f64,
}

/// The body of a per-entity model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerEntityBody {
    /// The `entity=` field.
    pub entity_field: String,
    /// The training window, as Unix seconds: the first hour seen and the window's end (exclusive).
    pub window_start: i64,
    pub window_end: i64,
    /// Each by-field's distinct values, in natural order.
    pub field_values: Vec<Vec<String>>,
    /// Slots in natural order of their by-field values.
    pub slots: Vec<Slot>,
    /// The shared seasonal profiles `F_k(s)`, one factor per slot each.
    pub profiles: Vec<Vec<f32>>,
    /// Entities in name order.
    pub entities: Vec<Entity>,
    /// `threshold` and `min_increase` given at fit (else the defaults), used by an apply that gives none.
    pub threshold: f64,
    pub min_increase: f64,
    pub settings: FitSettings,
}

impl PerEntityBody {
    /// Offsets of each field's values in [`Entity::refine`].
    pub fn offsets(&self) -> Vec<usize> {
        let mut off = Vec::with_capacity(self.field_values.len());
        let mut n = 0;
        for v in &self.field_values {
            off.push(n);
            n += v.len();
        }
        off
    }

    /// The expected count and over-dispersion of entity `e` (None: unseen, population) in slot `s`.
    pub fn predict(&self, offsets: &[usize], e: Option<usize>, s: usize) -> NegBin {
        let slot = &self.slots[s];
        match e {
            Some(e) => {
                let ent = &self.entities[e];
                let f = self.profiles[ent.profile as usize][s];
                let mut mu = ent.level as f64 * f as f64;
                for (j, &v) in slot.values.iter().enumerate() {
                    mu *= ent.refine[offsets[j] + v as usize] as f64;
                }
                NegBin::new(mu, ent.phi as f64)
            }
            None => NegBin::new(slot.pop_mean as f64, slot.pop_phi as f64),
        }
    }

    /// Name → entity index and slot key → slot index, for scoring.
    pub fn indexes(&self) -> (FxMap<Vec<u8>, u32>, FxMap<Vec<u8>, u32>) {
        let ents = self
            .entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.as_bytes().to_vec(), i as u32))
            .collect();
        let slots = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i as u32))
            .collect();
        (ents, slots)
    }

    /// One row of parameters per entity, for `summary`.
    pub fn entity_rows(&self, by_fields: &[String]) -> Vec<EntityRow> {
        let offsets = self.offsets();
        self.entities
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut peak = (0.0f64, 0usize);
                for s in 0..self.slots.len() {
                    let mu = self.predict(&offsets, Some(i), s).mu;
                    if mu > peak.0 {
                        peak = (mu, s);
                    }
                }
                let mut refinements = Vec::new();
                for (j, vals) in self.field_values.iter().enumerate() {
                    for (v, name) in vals.iter().enumerate() {
                        let r = e.refine[offsets[j] + v] as f64;
                        refinements.push((
                            by_fields.get(j).cloned().unwrap_or_default(),
                            name.clone(),
                            r,
                        ));
                    }
                }
                EntityRow {
                    entity: e.name.clone(),
                    level: e.level as f64,
                    phi: e.phi as f64,
                    hours: e.hours,
                    active_hours: e.active_hours,
                    peak_expected: peak.0,
                    peak_slot: self.slot_label(peak.1),
                    refinements,
                }
            })
            .collect()
    }

    /// A slot's by-field values joined with `,` (e.g. `02,Monday`).
    pub fn slot_label(&self, s: usize) -> String {
        let slot = &self.slots[s];
        slot.values
            .iter()
            .enumerate()
            .map(|(j, &v)| self.field_values[j][v as usize].as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Per-entity parameters as `summary` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRow {
    pub entity: String,
    pub level: f64,
    pub phi: f64,
    pub hours: u32,
    pub active_hours: u32,
    /// The largest expected count over the slots, and that slot's label.
    pub peak_expected: f64,
    pub peak_slot: String,
    /// `(by-field, value, rho)`.
    pub refinements: Vec<(String, String, f64)>,
}

/// A fast non-cryptographic hasher (FxHash) for the scoring maps: keys come from the model and from
/// the search's own rows, so hash flooding is not a concern.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;
