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

use super::score::{RowIssues, parse_number};
use crate::density::pyfmt;
use crate::hostmodel::{Boundary, FxMap, NegBin, PerEntityBody};
use crate::protocol::body::{FieldValue, Header, field_value};

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

/// What a row needs of its (entity, slot), computed once; its texts live in [`EntityScorer::arena`].
#[derive(Clone, Copy)]
struct Cached {
    dist: NegBin,
    boundary: Boundary,
    ranges: (u32, u32),
    expected: (u32, u32),
}

/// Scores rows against a per-entity model.
pub struct EntityScorer {
    pub settings: EntitySettings,
    body: PerEntityBody,
    offsets: Vec<usize>,
    entities: FxMap<Vec<u8>, u32>,
    slots: FxMap<Vec<u8>, u32>,
    key: Vec<u8>,
    text: String,
    /// (entity or `u32::MAX` for the population, slot) → its distribution, boundary, and the
    /// `BoundaryRanges` and `ExpectedCount` texts.
    bounds: FxMap<(u32, u32), Cached>,
    /// The cached texts, back to back.
    arena: String,
    /// Cache lookups and hits: caching stops when rows rarely repeat an (entity, slot), as in an
    /// hourly detection, where it would only cost memory.
    lookups: u64,
    hits: u64,
    pub issues: RowIssues,
    /// Rows scored against the population because their entity is not in the model.
    pub unseen_entity_rows: u64,
}

impl EntityScorer {
    pub fn new(settings: EntitySettings, body: PerEntityBody) -> EntityScorer {
        let (entities, slots) = body.indexes();
        EntityScorer {
            settings,
            offsets: body.offsets(),
            body,
            entities,
            slots,
            key: Vec::new(),
            text: String::new(),
            bounds: FxMap::default(),
            arena: String::new(),
            lookups: 0,
            hits: 0,
            issues: RowIssues::default(),
            unseen_entity_rows: 0,
        }
    }

    pub fn entity_field(&self) -> &str {
        &self.body.entity_field
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

    /// Appends this row's four output cells to `out`.
    pub fn score_row(
        &mut self,
        header: &Header,
        cols: &EntityColumns,
        rec: &csv::ByteRecord,
        out: &mut csv::ByteRecord,
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
            self.key.clear();
            for c in &cols.by {
                let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
                self.key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.key.extend_from_slice(v);
            }
            let s = self.slots.get(&self.key).copied();
            if s.is_none() {
                self.issues.unseen_group += 1;
            }
            s
        });
        let (Some(x), Some(s)) = (x, slot) else {
            for _ in 0..self.width() {
                out.push_field(b"");
            }
            return;
        };
        self.issues.scored += 1;
        let name = cols.entity.and_then(|c| rec.get(c)).unwrap_or(b"");
        let e = self.entities.get(name).map(|&e| e as usize);
        if e.is_none() {
            self.unseen_entity_rows += 1;
        }
        let cache_key = (e.map_or(u32::MAX, |e| e as u32), s);
        let threshold = self.settings.threshold;
        let min_increase = self.settings.min_increase;
        let caching = self.lookups < 20_000 || self.hits * 4 >= self.lookups;
        if !caching && !self.bounds.is_empty() {
            self.bounds = FxMap::default();
            self.arena = String::new();
        }
        self.lookups += 1;
        let hit = if caching {
            self.bounds.get(&cache_key).copied()
        } else {
            None
        };
        let c = match hit {
            Some(c) => {
                self.hits += 1;
                c
            }
            None => {
                if !caching {
                    self.arena.clear();
                }
                let dist = self.body.predict(&self.offsets, e, s as usize);
                let boundary = dist.boundary(threshold, dist.mu + min_increase);
                let a = &mut self.arena;
                let r0 = a.len();
                pyfmt::write_bound(a, boundary.k, true);
                a.push_str(":Infinity:");
                pyfmt::write_repr(a, significant(boundary.tail));
                let e0 = a.len();
                pyfmt::write_repr(a, (dist.mu * 100.0).round() / 100.0);
                let c = Cached {
                    dist,
                    boundary,
                    ranges: (r0 as u32, e0 as u32),
                    expected: (e0 as u32, a.len() as u32),
                };
                if caching {
                    self.bounds.insert(cache_key, c);
                }
                c
            }
        };
        let k = c.boundary.k;
        out.push_field(if x >= k { b"1.0" } else { b"0.0" });
        let text = |(a, b): (u32, u32)| &self.arena.as_bytes()[a as usize..b as usize];
        out.push_field(text(c.ranges));
        out.push_field(text(c.expected));
        let tail = if x == k {
            c.boundary.tail
        } else {
            c.dist.tail_near(&c.boundary, x)
        };
        let t = &mut self.text;
        t.clear();
        pyfmt::write_repr(t, significant(tail));
        out.push_field(t.as_bytes());
    }
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
