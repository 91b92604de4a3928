//! Scoring rows against a per-entity count model ([`crate::hostmodel`]): the output columns
//! `IsOutlier(<field>)`, `BoundaryRanges`, `ExpectedCount(<field>)` and `UpperTailProbability(<field>)`.
//! Shared by the per-entity `fit` (training rows) and `apply`.
//!
//! `BoundaryRanges` is the single upper range `<lowest outlying count>:Infinity:<P(X >= that count)>`;
//! a count is an outlier when it is at least the lowest outlying count, i.e. when
//! `P(X >= count) < threshold` and `count >= expected + min_increase`. Rows whose by-group (slot) is
//! not in the model, or whose count is empty or not a number, get empty outputs and one WARN per search,
//! as in the pooled apply. Rows of entities the model has not seen are scored against the population
//! model of their slot (one INFO per search says how many).
//!
//! Rows are written as CSV bytes, copying each input record raw where it can (see [`super::rows`]).
//! Each (entity, slot) gets its boundary and texts once, in a table indexed by entity and slot; a row
//! then only walks its own tail from the boundary's (a few multiply-adds) and prints it.

use super::rows;
use super::score::{RowIssues, parse_number};
use crate::density::pyfmt;
use crate::error::{Error, Result};
use crate::hostmodel::negbin::{Tails, walk_down, wh_z};
use crate::hostmodel::{Boundary, FxMap, NegBin, PerEntityBody};
use scpv2::body::{BodyReader, FieldValue, Header, field_value};

/// The settings of one per-entity scoring pass.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySettings {
    pub feature: String,
    pub by_fields: Vec<String>,
    pub threshold: f64,
    pub min_increase: f64,
    pub output_name: Option<String>,
}

impl EntitySettings {
    pub fn output_columns(&self) -> Vec<String> {
        vec![
            match &self.output_name {
                Some(n) => n.clone(),
                None => format!("IsOutlier({})", self.feature),
            },
            "BoundaryRanges".to_string(),
            format!("ExpectedCount({})", self.feature),
            format!("UpperTailProbability({})", self.feature),
        ]
    }
}

/// The columns one chunk's header gives.
pub struct EntityColumns {
    feature: Option<usize>,
    entity: Option<usize>,
    by: Vec<Option<usize>>,
}

/// What rows need of their (entity, slot), computed once; its texts live in [`EntityScorer::arena`].
#[derive(Clone, Copy)]
struct Entry {
    boundary: Boundary,
    mu: f64,
    /// [`Tails::q`], for walking tails down from the boundary.
    q: f64,
    /// `BoundaryRanges` then `ExpectedCount`, back to back from `text`.
    text: u32,
    ranges_len: u16,
    expected_len: u16,
}

/// What [`EntityScorer::mu`] needs of an entity.
#[derive(Clone, Copy)]
struct EntityParams {
    level: f32,
    phi: f32,
    profile: u32,
    refine_at: u32,
    refine_len: u32,
}

/// No entity (an empty slot of the name index, a successor not yet seen).
const NONE: u32 = u32::MAX;

/// FxHash of a name, folded to 32 bits.
#[inline]
fn name_hash(name: &[u8]) -> u32 {
    use std::hash::Hasher;
    let mut h = crate::hostmodel::FxHasher::default();
    h.write(name);
    let v = h.finish();
    (v ^ (v >> 32)) as u32
}

/// Cache at most this many (entity, slot) pairs, about 80 bytes each with their texts (2,000 hosts
/// × 168 hours of the week are 336,000).
const MAX_CACHED: usize = 1 << 19;
/// The dense (entity, slot) table is used up to this many cells (4 bytes each, zero pages until
/// touched); beyond it pairs are not cached.
const MAX_TABLE: usize = 1 << 24;

/// Scores rows against a per-entity model.
pub struct EntityScorer {
    pub settings: EntitySettings,
    body: PerEntityBody,
    /// Entity names → index: open addressing over their hashes, names compared in `names`.
    name_index: Vec<(u32, u32)>,
    slots: FxMap<Vec<u8>, u32>,
    /// Entity names back to back (entity `e`'s from `name_at[e]` to `name_at[e + 1]`), and per entity
    /// (and one more for the start) the entity whose row followed it last: rows come hour by hour in
    /// the same order, so the next row's entity is usually found by one comparison, without hashing.
    names: Vec<u8>,
    name_at: Vec<u32>,
    successor: Vec<u32>,
    last_entity: usize,
    /// Per entity: level, over-dispersion, profile and where its refinements start in `refine`,
    /// contiguous (a row touches a different entity each time).
    params: Vec<EntityParams>,
    refine: Vec<f32>,
    /// The profiles' factors, profile-major.
    factors: Vec<f32>,
    /// Per slot, each by-field's index into an entity's refinements (`offsets[j] + value`), slot `s`'s
    /// from `slot_refine_at[s]` to `slot_refine_at[s + 1]`.
    slot_refine: Vec<u32>,
    slot_refine_at: Vec<u32>,
    /// [`NegBin::size_consts`] per entity, then per slot for the population.
    ent_consts: Vec<(f64, f64)>,
    pop_consts: Vec<(f64, f64)>,
    /// The Wilson–Hilferty `z` of the threshold.
    z: f64,
    key: Vec<u8>,
    /// The last row's by-field values and slot: rows come hour by hour, so most repeat it.
    last_values: Vec<u8>,
    last_slot: Option<u32>,
    /// slot * (entities + 1) + (entity + 1, or 0 for the population) → entry index + 1 (0: not
    /// computed). Slot-major: the rows of one hour are neighbours.
    table: Vec<u32>,
    entries: Vec<Entry>,
    /// The cached texts, back to back.
    arena: Vec<u8>,
    pub issues: RowIssues,
    /// Rows scored against the population because their entity is not in the model.
    pub unseen_entity_rows: u64,
}

impl EntityScorer {
    pub fn new(settings: EntitySettings, body: PerEntityBody) -> EntityScorer {
        let slots = body
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.clone(), i as u32))
            .collect();
        let offsets = body.offsets();
        let mut slot_refine = Vec::new();
        let mut slot_refine_at = vec![0u32];
        for slot in &body.slots {
            for (j, &v) in slot.values.iter().enumerate() {
                slot_refine.push((offsets[j] + v as usize) as u32);
            }
            slot_refine_at.push(slot_refine.len() as u32);
        }
        let ent_consts = body
            .entities
            .iter()
            .map(|e| NegBin::size_consts(e.phi as f64))
            .collect();
        let pop_consts = body
            .slots
            .iter()
            .map(|s| NegBin::size_consts(s.pop_phi as f64))
            .collect();
        let cells = (body.entities.len() + 1).saturating_mul(body.slots.len());
        let mut names = Vec::new();
        let mut name_at = vec![0u32];
        let mut refine = Vec::new();
        let mut params = Vec::with_capacity(body.entities.len());
        for e in &body.entities {
            names.extend_from_slice(e.name.as_bytes());
            name_at.push(names.len() as u32);
            params.push(EntityParams {
                level: e.level,
                phi: e.phi,
                profile: e.profile as u32,
                refine_at: refine.len() as u32,
                refine_len: e.refine.len() as u32,
            });
            refine.extend_from_slice(&e.refine);
        }
        let n_slots = body.slots.len();
        let factors = body
            .profiles
            .iter()
            .flat_map(|p| (0..n_slots).map(|s| p.get(s).copied().unwrap_or(f32::NAN)))
            .collect();
        let caching = cells <= MAX_TABLE;
        // A power of two at least twice the entities; a later duplicate name wins, as in a map.
        let size = (body.entities.len() * 2).next_power_of_two().max(16);
        let mut name_index = vec![(0u32, NONE); size];
        for (e, ent) in body.entities.iter().enumerate() {
            let h = name_hash(ent.name.as_bytes());
            let mut i = h as usize & (size - 1);
            while name_index[i].1 != NONE && {
                let o = name_index[i].1 as usize;
                names[name_at[o] as usize..name_at[o + 1] as usize] != *ent.name.as_bytes()
            } {
                i = (i + 1) & (size - 1);
            }
            name_index[i] = (h, e as u32);
        }
        EntityScorer {
            successor: vec![NONE; body.entities.len() + 1],
            last_entity: body.entities.len(),
            names,
            name_at,
            params,
            refine,
            factors,
            z: wh_z(settings.threshold),
            settings,
            name_index,
            slots,
            slot_refine,
            slot_refine_at,
            ent_consts,
            pop_consts,
            key: Vec::new(),
            last_values: Vec::new(),
            last_slot: None,
            table: if caching { vec![0; cells] } else { Vec::new() },
            // Address space only until used: no copying as they grow.
            entries: Vec::with_capacity(if caching { cells.min(MAX_CACHED) } else { 0 }),
            arena: Vec::with_capacity(if caching {
                cells.min(MAX_CACHED) * 32
            } else {
                0
            }),
            body,
            issues: RowIssues::default(),
            unseen_entity_rows: 0,
        }
    }

    pub fn entity_field(&self) -> &str {
        &self.body.entity_field
    }

    /// The model's index of an entity name, as a row's lookup finds it.
    pub fn entity_index(&self, name: &[u8]) -> Option<u32> {
        let h = name_hash(name);
        let mask = self.name_index.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let (tag, e) = self.name_index[i];
            if e == NONE {
                return None;
            }
            if tag == h && self.name(e) == name {
                return Some(e);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn name(&self, e: u32) -> &[u8] {
        &self.names[self.name_at[e as usize] as usize..self.name_at[e as usize + 1] as usize]
    }

    /// The model's index of an encoded slot key.
    pub fn slot_index(&self, key: &[u8]) -> Option<u32> {
        self.slots.get(key).copied()
    }

    pub fn columns(&self, header: &Header) -> EntityColumns {
        EntityColumns {
            feature: header.find(&self.settings.feature),
            entity: header.find(&self.body.entity_field),
            by: self
                .settings
                .by_fields
                .iter()
                .map(|f| header.find(f))
                .collect(),
        }
    }

    pub fn width(&self) -> usize {
        4
    }

    /// The INFO about entities scored against the population, if any.
    pub fn info(&self) -> Option<String> {
        (self.unseen_entity_rows > 0).then(|| {
            format!(
                "{} rows came from {} values not in the model and were scored against the population model of their group",
                self.unseen_entity_rows, self.body.entity_field
            )
        })
    }

    /// Scores one chunk: writes its header (kept input columns, then the outputs) and every row into
    /// `out`.
    pub fn score_chunk(&mut self, body: &[u8], chunk: u64, out: &mut Vec<u8>) -> Result<()> {
        self.issues.start_chunk();
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        if reader.header.is_empty() {
            return Ok(());
        }
        let out_cols = self.settings.output_columns();
        let header = reader.header.clone();
        let kept = rows::kept_columns(&header.names, &out_cols);
        let cols = self.columns(&header);
        let bytes = reader.bytes();
        let all_kept = kept.len() == header.len();
        // Outputs add about 40 bytes to rows of about 35.
        out.reserve(body.len() * 5 / 2);
        rows::write_record(
            out,
            kept.iter()
                .map(|&i| header.names[i].as_slice())
                .chain(out_cols.iter().map(|c| c.as_bytes())),
        );
        let mut rec = csv::ByteRecord::new();
        while reader
            .read(&mut rec)
            .map_err(|source| Error::Body { chunk, source })?
        {
            let row_start = out.len();
            rows::write_input(out, bytes, &rec, (!all_kept).then_some(&kept[..]));
            self.append_cells(&header, &cols, &rec, out);
            if kept.is_empty() {
                // No input column precedes the outputs: drop the first cell's comma.
                out.remove(row_start);
            }
            out.push(b'\n');
        }
        Ok(())
    }

    /// Appends this row's four output cells to `out`, each after a comma.
    pub fn append_cells(
        &mut self,
        header: &Header,
        cols: &EntityColumns,
        rec: &csv::ByteRecord,
        out: &mut Vec<u8>,
    ) {
        let issues = &mut self.issues;
        let x = match field_value(header, rec, cols.feature) {
            FieldValue::Empty => {
                issues.empty_value += 1;
                None
            }
            FieldValue::One(v) => {
                issues.chunk_valued += 1;
                let x = parse_number(&v);
                if x.is_none() {
                    issues.non_numeric += 1;
                    issues.chunk_non_numeric += 1;
                }
                x
            }
            FieldValue::Many(_) => {
                issues.chunk_valued += 1;
                issues.non_numeric += 1;
                issues.chunk_non_numeric += 1;
                None
            }
        };
        let slot = x.and_then(|_| {
            let s = self.slot_of(cols, rec);
            if s.is_none() {
                self.issues.unseen_group += 1;
            }
            s
        });
        let (Some(x), Some(s)) = (x, slot) else {
            self.append_empty(out);
            return;
        };
        let name = cols.entity.and_then(|c| rec.get(c)).unwrap_or(b"");
        let e = self.entity_of(name);
        self.append_scored(e, s, x, out);
    }

    /// The model's index of a row's entity: the last row's entity's successor when the name is
    /// that one's, else looked up.
    #[inline]
    fn entity_of(&mut self, name: &[u8]) -> Option<u32> {
        let guess = self.successor[self.last_entity];
        let e = if guess != NONE && self.name(guess) == name {
            Some(guess)
        } else {
            self.entity_index(name)
        };
        if let Some(e) = e {
            self.successor[self.last_entity] = e;
            self.last_entity = e as usize;
        }
        e
    }

    /// The slot of a row's by-field values: the last row's when they are the same.
    #[inline]
    fn slot_of(&mut self, cols: &EntityColumns, rec: &csv::ByteRecord) -> Option<u32> {
        self.key.clear();
        for c in &cols.by {
            let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
            self.key.extend_from_slice(&(v.len() as u32).to_le_bytes());
            self.key.extend_from_slice(v);
        }
        if self.key != self.last_values || self.last_values.is_empty() {
            self.last_slot = self.slots.get(&self.key).copied();
            std::mem::swap(&mut self.key, &mut self.last_values);
        }
        self.last_slot
    }

    /// Appends the four empty cells of a row that gets no score.
    #[inline]
    pub fn append_empty(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",,,,");
    }

    /// Appends the four output cells of a count `x` of entity `e` (None: not in the model, scored
    /// against the population) in slot `s`.
    #[inline]
    pub fn append_scored(&mut self, e: Option<u32>, s: u32, x: f64, out: &mut Vec<u8>) {
        self.issues.scored += 1;
        if e.is_none() {
            self.unseen_entity_rows += 1;
        }
        let cell = s as usize * (self.body.entities.len() + 1) + e.map_or(0, |e| e as usize + 1);
        let (entry, keep) = match self.table.get(cell).copied() {
            Some(0) if self.entries.len() < MAX_CACHED => {
                let entry = self.compute(e, s);
                self.entries.push(entry);
                self.table[cell] = self.entries.len() as u32;
                (entry, true)
            }
            Some(i) if i > 0 => (self.entries[i as usize - 1], true),
            _ => (self.compute(e, s), false),
        };
        let b = &entry.boundary;
        out.extend_from_slice(if x >= b.k { b",1.0," } else { b",0.0," });
        let t0 = entry.text as usize;
        let t1 = t0 + entry.ranges_len as usize;
        out.extend_from_slice(&self.arena[t0..t1]);
        out.push(b',');
        out.extend_from_slice(&self.arena[t1..t1 + entry.expected_len as usize]);
        out.push(b',');
        let size = match e {
            Some(e) => self.ent_consts[e as usize].0,
            None => self.pop_consts[s as usize].0,
        };
        let tail = walk_down(b, size, entry.q, x)
            .unwrap_or_else(|| self.tails(e, s, entry.mu).upper_tail(x));
        write_significant(out, tail);
        if !keep {
            self.arena.truncate(t0);
        }
    }

    /// The expected count of entity `e` (None: the population) in slot `s`, as
    /// [`PerEntityBody::predict`] computes it.
    #[inline]
    fn mu(&self, e: Option<u32>, s: u32) -> f64 {
        let s = s as usize;
        match e {
            Some(e) => {
                let p = self.params[e as usize];
                let mut f = self.factors[p.profile as usize * self.body.slots.len() + s];
                if f.is_nan() {
                    // NaN in the model, or a profile shorter than the slots (which panics, as
                    // `predict` would).
                    f = self.body.profiles[p.profile as usize][s];
                }
                let mut mu = p.level as f64 * f as f64;
                let refine = &self.refine[p.refine_at as usize..][..p.refine_len as usize];
                let at = &self.slot_refine_at;
                for &i in &self.slot_refine[at[s] as usize..at[s + 1] as usize] {
                    mu *= refine[i as usize] as f64;
                }
                mu
            }
            None => self.body.slots[s].pop_mean as f64,
        }
    }

    #[inline]
    fn tails(&self, e: Option<u32>, s: u32, mu: f64) -> Tails {
        match e {
            Some(e) => Tails::new(
                NegBin::new(mu, self.params[e as usize].phi as f64),
                self.ent_consts[e as usize],
            ),
            None => Tails::new(
                NegBin::new(mu, self.body.slots[s as usize].pop_phi as f64),
                self.pop_consts[s as usize],
            ),
        }
    }

    /// The boundary of (entity, slot) and its texts, appended to the arena.
    fn compute(&mut self, e: Option<u32>, s: u32) -> Entry {
        let mu = self.mu(e, s);
        let t = self.tails(e, s, mu);
        let mu = t.dist.mu;
        let boundary = t.boundary(
            self.settings.threshold,
            self.z,
            mu + self.settings.min_increase,
        );
        let a = &mut self.arena;
        let r0 = a.len();
        pyfmt::write_bound_bytes(a, boundary.k, true);
        a.extend_from_slice(b":Infinity:");
        write_significant(a, boundary.tail);
        let e0 = a.len();
        write_cents(a, mu);
        Entry {
            mu,
            q: t.q(),
            boundary,
            text: r0 as u32,
            ranges_len: (e0 - r0) as u16,
            expected_len: (a.len() - e0) as u16,
        }
    }
}

/// Python's `repr(significant(p))`. When `significant` divides an integer by an exact power of ten
/// (`1e-17 <= p`), its result is the double nearest that decimal, whose repr is the decimal's own
/// digits: printed from the integer without a float-to-text conversion.
#[inline]
fn write_significant(out: &mut Vec<u8>, p: f64) {
    if (1e-16..1e6).contains(&p) {
        // `floor(log10(p))` from the binary exponent: where it can differ from the logarithm's (p
        // within an ulp of a power of ten) both round to that power, so the text is the same.
        let e2 = ((p.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        // floor(e2 log10(2)) (78913 / 2^18 is log10(2) to 6 digits, exact enough for |e2| < 1000).
        let mut e = (e2 * 78913) >> 18;
        if p >= pow10(e + 1) {
            e += 1;
        }
        let k = 5 - e;
        // 10^k is exact up to 10^22, as `powi` gives it.
        write_decimal(out, round_half_away(p * POW10[k as usize]), k);
        return;
    }
    pyfmt::write_repr_bytes(out, significant(p));
}

/// `10^k` for `k` = 0..=22, all exact.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The double nearest `10^n`, `-22 <= n <= 22`.
#[inline]
fn pow10(n: i32) -> f64 {
    const NEG: [f64; 23] = [
        1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13,
        1e-14, 1e-15, 1e-16, 1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
    ];
    if n >= 0 {
        POW10[n as usize]
    } else {
        NEG[(-n) as usize]
    }
}

/// Python's `repr(round(mu, 2))` as `(mu * 100).round() / 100` gives it, the same way.
#[inline]
fn write_cents(out: &mut Vec<u8>, mu: f64) {
    let v = mu * 100.0;
    if (0.5..1e15).contains(&v) {
        write_decimal(out, round_half_away(v), 2);
    } else {
        pyfmt::write_repr_bytes(out, v.round() / 100.0);
    }
}

/// `v.round()` for `0 <= v < 2^52`, without the libm call (no SSE4.1 rounding in the baseline
/// target): the fraction `v - trunc(v)` is exact there.
#[inline]
fn round_half_away(v: f64) -> u64 {
    let i = v as u64;
    i + u64::from(v - i as f64 >= 0.5)
}

/// Python's repr of the double nearest `m * 10^-k` (`m > 0`, at most 15 digits), laid out as
/// [`pyfmt::write_repr_bytes`] does: fixed notation for `1e-4 <= v < 1e16`, else `d.ddde-XX`.
fn write_decimal(out: &mut Vec<u8>, m: u64, k: i32) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(m).as_bytes();
    let exp = text.len() as i32 - 1 - k;
    let mut n = text.len();
    while n > 1 && text[n - 1] == b'0' {
        n -= 1;
    }
    pyfmt::write_digits(out, &text[..n], exp);
}

/// Rounds to 6 significant digits (tail probabilities need no more, and print shorter).
fn significant(p: f64) -> f64 {
    if p <= 0.0 || !p.is_finite() || p < 1e-300 {
        return p;
    }
    let scale = 10f64.powi(5 - p.log10().floor() as i32);
    if !scale.is_finite() {
        return p;
    }
    (p * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostmodel::fit::{Accumulator, FitConfig};

    /// A model of 30 hosts over 4 weeks of hours (slot = hour of day), busy to nearly silent.
    fn model() -> PerEntityBody {
        let mut acc = Accumulator::default();
        let mut z = 7u64;
        for h in 0..672i64 {
            for e in 0..30u64 {
                z = z
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (z >> 11) as f64 / (1u64 << 53) as f64;
                let level = [0.3, 0.5, 3.0, 40.0, 900.0][e as usize % 5];
                let x = (level * (1.0 + (h % 24) as f64 / 12.0) * 2.0 * u).round();
                if x > 0.0 {
                    let slot = format!("{:02}", h % 24);
                    let mut key = Vec::new();
                    crate::model::encode_key([slot.as_bytes()], &mut key);
                    acc.push(format!("h{e:02}").as_bytes(), &key, (h * 3600) as f64, x);
                }
            }
        }
        acc.finish("src", &FitConfig::default(), 1e-4, 20.0)
            .unwrap()
    }

    fn scorer() -> EntityScorer {
        let settings = EntitySettings {
            feature: "count".into(),
            by_fields: vec!["HourOfDay".into()],
            threshold: 1e-4,
            min_increase: 20.0,
            output_name: None,
        };
        EntityScorer::new(settings, model())
    }

    /// Every (host, hour) and count pattern twice (cached the second time), an unknown host, an
    /// unknown hour and an empty count: each row's cells against the statrs tail and boundary.
    #[test]
    fn scored_rows_match_the_reference_and_repeat_from_the_cache() {
        let mut body = String::from("src,count,HourOfDay\n");
        for _ in 0..2 {
            for e in 0..31 {
                for h in [0, 7, 13, 23] {
                    for x in [0, 1, 3, 25, 60, 400, 5000] {
                        body.push_str(&format!("h{e:02},{x},{h:02}\n"));
                    }
                }
            }
        }
        body.push_str("h01,5,24\nh01,,03\n");
        let mut sc = scorer();
        let mut out = Vec::new();
        sc.score_chunk(body.as_bytes(), 1, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "src,count,HourOfDay,IsOutlier(count),BoundaryRanges,ExpectedCount(count),UpperTailProbability(count)"
        );
        let rows = &lines[1..];
        let half = (rows.len() - 2) / 2;
        assert_eq!(
            rows[..half],
            rows[half..2 * half],
            "cached rows print the same"
        );
        assert_eq!(rows[2 * half], "h01,5,24,,,,");
        assert_eq!(rows[2 * half + 1], "h01,,03,,,,");
        let model = model();
        let offsets = model.offsets();
        for row in &rows[..half] {
            let c: Vec<&str> = row.split(',').collect();
            let x: f64 = c[1].parse().unwrap();
            let e = model.entities.iter().position(|en| en.name == c[0]);
            let s = model
                .slots
                .iter()
                .position(|sl| sl.key[4..] == *c[2].as_bytes())
                .unwrap();
            let d = model.predict(&offsets, e, s);
            let (k, _) = d.lowest_outlying(1e-4, d.mu + 20.0);
            let exact = |v: f64| {
                let mut t = Vec::new();
                pyfmt::write_repr_bytes(&mut t, significant(d.upper_tail(v)));
                String::from_utf8(t).unwrap()
            };
            assert_eq!(c[3], if x >= k { "1.0" } else { "0.0" }, "{row}");
            assert_eq!(c[4], format!("{k}:Infinity:{}", exact(k)), "{row}");
            assert_eq!(c[5], pyfmt::repr((d.mu * 100.0).round() / 100.0), "{row}");
            assert_eq!(c[6], exact(x), "{row}");
            assert!(k >= (d.mu + 20.0).ceil() && d.upper_tail(k) < 1e-4);
            assert!(k == (d.mu + 20.0).ceil() || d.upper_tail(k - 1.0) >= 1e-4);
        }
        assert_eq!(sc.unseen_entity_rows, 2 * 4 * 7);
        assert_eq!(sc.issues.unseen_group, 1);
    }

    fn via_ryu_significant(p: f64) -> Vec<u8> {
        let mut v = Vec::new();
        pyfmt::write_repr_bytes(&mut v, significant(p));
        v
    }

    fn fast_significant(p: f64) -> Vec<u8> {
        let mut v = Vec::new();
        write_significant(&mut v, p);
        v
    }

    #[test]
    fn significant_text_matches_ryu() {
        let mut cases = vec![
            0.0,
            1.0,
            0.5,
            1e-4,
            9.9999996e-5,
            9.9999949e-5,
            0.173029,
            0.0325705,
            1e-17,
            9.99999e-18,
            1.2e-17,
            3.0524e-20,
            6.2e-300,
            1e-300,
            1e-301,
            0.999999951,
            0.9999995,
            1e-5,
            5e-5,
        ];
        // Random probabilities over the whole range, and values next to powers of ten.
        let mut z = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            z = z
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            cases.push(10f64.powf(-40.0 * u));
        }
        // Next to powers of ten (where the decimal exponent is decided) and to rounding midpoints.
        for e in 0..30 {
            for p in [
                10f64.powi(-e),
                10f64.powi(-e) * (1.0 - 5e-7),
                1.234565 * 10f64.powi(-e),
            ] {
                let (mut up, mut down) = (p, p);
                for _ in 0..6 {
                    cases.extend([up, down]);
                    (up, down) = (up.next_up(), down.next_down());
                }
            }
        }
        for p in cases {
            assert_eq!(
                String::from_utf8(fast_significant(p)).unwrap(),
                String::from_utf8(via_ryu_significant(p)).unwrap(),
                "{p:e}"
            );
        }
    }

    #[test]
    fn cents_text_matches_ryu() {
        let mut z = 0x0fed_cba9_8765_4321u64;
        let mut cases = vec![
            0.0, 0.004, 0.005, 0.015, 1.0, 99.995, 123456.785, 1e13, 9.9e12, 1e16, 3e17,
        ];
        for _ in 0..200_000 {
            z = z
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            cases.push(10f64.powf(-3.0 + 18.0 * u));
        }
        for mu in cases {
            let (mut got, mut want) = (Vec::new(), Vec::new());
            write_cents(&mut got, mu);
            pyfmt::write_repr_bytes(&mut want, (mu * 100.0).round() / 100.0);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap(),
                "{mu:e}"
            );
        }
    }
}
