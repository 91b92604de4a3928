//! Saved models: what a fit stores and apply, summary and listmodels read back.
//!
//! A model is a small [`ModelHeader`] (enough to answer getinfo and listmodels without decoding the
//! groups) and a [`ModelBody`] with one entry per group. Nothing from `searchinfo` but the app and the
//! owner is ever stored.

pub mod mltk;
pub mod store;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::density::{BoundaryRange, DistKind, Distribution, GroupStats};
use crate::spl::{Metric, ThresholdSet};

/// The parameters a fit stores, reused by an apply that gives none of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredParams {
    pub dist: DistKind,
    pub exclude_dist: Vec<DistKind>,
    pub metric: Metric,
    pub thresholds: ThresholdSet,
    pub show_density: bool,
    pub sample: bool,
    pub full_sample: bool,
    pub show_options: Option<String>,
    /// `as <name>` at fit renames the outlier column of every later apply too, as in MLTK.
    pub output_name: Option<String>,
    pub random_state: Option<i64>,
}

/// The part of a model that getinfo and listmodels need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    /// The algorithm as typed at fit (`smbdensity` or `DensityFunction`).
    pub algorithm: String,
    pub feature: String,
    pub by_fields: Vec<String>,
    pub params: StoredParams,
    /// The fit's arguments as typed, for `listmodels`.
    pub args: Vec<String>,
    pub app: String,
    pub owner: String,
    pub group_count: u64,
    /// Seconds since the Unix epoch when the model was written.
    pub created: u64,
}

/// A fitted group: its by-field values, training statistics, distribution and precomputed boundaries
/// for the stored thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The by-field values, encoded with [`encode_key`].
    pub key: Vec<u8>,
    pub stats: GroupStats,
    pub dist: Distribution,
    /// Distance between the fitted CDF and the data's empirical CDF (`summary`'s `distance`; NaN when
    /// not computed).
    pub distance: f64,
    /// The group's reservoir of training values, kept for distributions fitted on values (KDE, Beta,
    /// auto) so that `partial_fit` can continue it; empty otherwise.
    pub sample: Vec<f64>,
    /// One range list per stored threshold.
    pub boundaries: Vec<Vec<BoundaryRange>>,
}

/// The per-group content of a DensityFunction model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityBody {
    /// Every training value of the feature was integer text, so Python prints its min without `.0`.
    pub integral_feature: bool,
    /// Groups in natural sort order of their by-field values.
    pub groups: Vec<Group>,
    /// How apply canonicalises each by-field value before looking its group up; empty means every
    /// value is matched as text, exactly as received (native models). Only models imported from MLTK
    /// set it (see [`KeyCanon`]). Never stored: it is derived again each time an MLTK file is read,
    /// and native model files keep their format.
    #[serde(skip)]
    pub key_canon: Vec<KeyCanon>,
}

/// What scoring needs of a DensityFunction model: every group's key and Normal/Exponential parameters
/// in one [`table::GroupTable`] (records and a hash index over them, mapped straight from a version-3
/// file or built in memory), and any other distribution, or stored boundaries, on the side. Built by
/// [`store::ModelStore::load_for_scoring`], or from a [`DensityBody`].
#[derive(Debug)]
pub struct FlatDensity {
    pub integral_feature: bool,
    pub key_canon: Vec<KeyCanon>,
    table: table::GroupTable,
    /// Distributions with heap parts, or with stored boundaries (empty when left out; see `store`), in
    /// group order; a kind-2 record holds its position here.
    others: Vec<(Distribution, Vec<Vec<BoundaryRange>>)>,
}

/// A group of a [`FlatDensity`]: its number and its distribution's parameters, as found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupRef(table::Record);

impl From<table::Record> for GroupRef {
    fn from(r: table::Record) -> GroupRef {
        GroupRef(r)
    }
}

impl GroupRef {
    /// The group's number (its position in the model).
    #[inline]
    pub fn group(&self) -> usize {
        self.0.group as usize
    }
}

impl PartialEq for FlatDensity {
    fn eq(&self, o: &FlatDensity) -> bool {
        self.integral_feature == o.integral_feature
            && self.key_canon == o.key_canon
            && self.others == o.others
            && self.table.records() == o.table.records()
            && self.table.index() == o.table.index()
    }
}

impl FlatDensity {
    /// Takes a table checked by [`table::GroupTable::open`] (or built) and its other groups.
    pub fn from_parts(
        integral_feature: bool,
        table: table::GroupTable,
        others: Vec<(Distribution, Vec<Vec<BoundaryRange>>)>,
    ) -> FlatDensity {
        FlatDensity {
            integral_feature,
            key_canon: Vec::new(),
            table,
            others,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The group whose key is `key`.
    #[inline]
    pub fn find(&self, key: &[u8]) -> Option<GroupRef> {
        self.table.find(key).map(GroupRef)
    }

    /// The groups' table, for lookups in steps (hash, prefetch, find).
    #[inline]
    pub fn table(&self) -> &table::GroupTable {
        &self.table
    }

    /// Group `g`.
    pub fn group(&self, g: usize) -> Option<GroupRef> {
        self.table.get(g).map(|(r, _)| GroupRef(r))
    }

    /// Group `g`'s key.
    pub fn key(&self, g: usize) -> &[u8] {
        self.table.get(g).map_or(&[], |(_, k)| k)
    }

    /// A group's distribution (built on the spot, without allocating, for Normal and Exponential).
    #[inline]
    pub fn dist(&self, r: GroupRef) -> std::borrow::Cow<'_, Distribution> {
        use crate::density::{exponential::Exponential, normal::Normal};
        use std::borrow::Cow;
        let t = r.0;
        match t.kind {
            table::KIND_NORMAL => Cow::Owned(Distribution::Normal(Normal {
                mean: t.a,
                std: t.b,
            })),
            table::KIND_EXPONENTIAL => Cow::Owned(Distribution::Exponential(Exponential {
                loc: t.a,
                scale: t.b,
            })),
            // Tables are checked to number their other groups within `others`.
            _ => Cow::Borrowed(&self.others[t.a.to_bits() as usize].0),
        }
    }

    /// A group's distribution if it is a Normal (with no stored boundaries).
    #[inline]
    pub fn normal(&self, r: GroupRef) -> Option<crate::density::normal::Normal> {
        (r.0.kind == table::KIND_NORMAL).then_some(crate::density::normal::Normal {
            mean: r.0.a,
            std: r.0.b,
        })
    }

    /// A group's stored boundaries, per threshold (empty when left out; see `store`).
    #[inline]
    pub fn boundaries(&self, r: GroupRef) -> &[Vec<BoundaryRange>] {
        match r.0.kind {
            table::KIND_OTHER => &self.others[r.0.a.to_bits() as usize].1,
            _ => &[],
        }
    }
}

/// Collects groups for a [`FlatDensity`] built in memory.
#[derive(Default)]
pub struct FlatBuilder {
    pub integral_feature: bool,
    pub key_canon: Vec<KeyCanon>,
    key_bytes: Vec<u8>,
    key_ends: Vec<usize>,
    params: Vec<(u8, f64, f64)>,
    others: Vec<(Distribution, Vec<Vec<BoundaryRange>>)>,
}

impl FlatBuilder {
    pub fn with_capacity(n: usize) -> FlatBuilder {
        FlatBuilder {
            key_ends: Vec::with_capacity(n),
            params: Vec::with_capacity(n),
            key_bytes: Vec::with_capacity(n.saturating_mul(16)),
            ..Default::default()
        }
    }

    pub fn push(&mut self, key: &[u8], dist: Distribution, boundaries: Vec<Vec<BoundaryRange>>) {
        match dist {
            Distribution::Normal(d) if boundaries.is_empty() => {
                self.push_normal(key, d.mean, d.std)
            }
            Distribution::Exponential(d) if boundaries.is_empty() => {
                self.push_exponential(key, d.loc, d.scale)
            }
            dist => {
                let at = f64::from_bits(self.others.len() as u64);
                self.others.push((dist, boundaries));
                self.push_key(key, table::KIND_OTHER, at, 0.0);
            }
        }
    }

    /// Adds a Normal group with no stored boundaries.
    #[inline]
    pub fn push_normal(&mut self, key: &[u8], mean: f64, std: f64) {
        self.push_key(key, table::KIND_NORMAL, mean, std);
    }

    /// Adds an Exponential group with no stored boundaries.
    #[inline]
    pub fn push_exponential(&mut self, key: &[u8], loc: f64, scale: f64) {
        self.push_key(key, table::KIND_EXPONENTIAL, loc, scale);
    }

    #[inline]
    fn push_key(&mut self, key: &[u8], kind: u8, a: f64, b: f64) {
        self.key_bytes.extend_from_slice(key);
        self.key_ends.push(self.key_bytes.len());
        self.params.push((kind, a, b));
    }

    /// Lays the groups out and indexes them.
    pub fn finish(self) -> FlatDensity {
        let keys = &self.key_bytes;
        let table =
            table::GroupTable::build(self.params.iter().enumerate().map(|(i, &(t, a, b))| {
                let start = if i == 0 { 0 } else { self.key_ends[i - 1] };
                (&keys[start..self.key_ends[i]], t, a, b)
            }));
        FlatDensity {
            integral_feature: self.integral_feature,
            key_canon: self.key_canon,
            table,
            others: self.others,
        }
    }
}

impl From<DensityBody> for FlatDensity {
    fn from(b: DensityBody) -> FlatDensity {
        let mut f = FlatBuilder::with_capacity(b.groups.len());
        f.integral_feature = b.integral_feature;
        f.key_canon = b.key_canon;
        for g in b.groups {
            f.push(&g.key, g.dist, g.boundaries);
        }
        f.finish()
    }
}

/// How a by-field value is matched against the groups of a model imported from MLTK.
///
/// MLTK keys groups by pandas-typed values: a by-field whose every value was integer text (`07`, from
/// `strftime(_time, "%H")`) is typed int64, so its group is `7`. Splunk sends `07` again at apply, so for
/// such a field apply rewrites integer text to Python's `str(int(v))` (`07` → `7`, `+7` → `7`, `-0` → `0`)
/// before the lookup, which is what pandas does to MLTK's apply chunks. A boolean field likewise maps
/// `true`/`TRUE`/`True` to `True` (and `false` forms to `False`). Other text is matched as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum KeyCanon {
    /// Match the text exactly (native models; MLTK string fields).
    #[default]
    Text,
    /// The field was int64 in MLTK: integer text is compared by value.
    Integer,
    /// The field was bool in MLTK.
    Bool,
}

impl KeyCanon {
    /// Appends `v`, canonicalised, to `out` as one [`encode_key`] entry.
    #[inline]
    pub fn push_key_value(self, v: &[u8], out: &mut Vec<u8>) {
        if self == KeyCanon::Text {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
            return;
        }
        let canon: std::borrow::Cow<[u8]> = match self {
            KeyCanon::Text => v.into(),
            KeyCanon::Integer => canonical_integer(v).map_or(v.into(), Into::into),
            KeyCanon::Bool => {
                if v.eq_ignore_ascii_case(b"true") {
                    (&b"True"[..]).into()
                } else if v.eq_ignore_ascii_case(b"false") {
                    (&b"False"[..]).into()
                } else {
                    v.into()
                }
            }
        };
        encode_key([&canon[..]], out);
    }
}

/// Python's `str(int(v))` for integer text (optional sign, ASCII digits); None for anything else.
pub fn canonical_integer(v: &[u8]) -> Option<Vec<u8>> {
    let (neg, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let first = digits.iter().position(|&c| c != b'0');
    let mut out = Vec::with_capacity(digits.len() + 1);
    match first {
        None => out.push(b'0'),
        Some(i) => {
            if neg {
                out.push(b'-');
            }
            out.extend_from_slice(&digits[i..]);
        }
    }
    Some(out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelBody {
    Density(DensityBody),
    /// `entity=<field> dist=negbin`: one count model per entity (see [`crate::hostmodel`]).
    PerEntity(crate::hostmodel::PerEntityBody),
}

impl ModelBody {
    /// The model's kind, for `listmodels`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelBody::Density(_) => "DensityFunction",
            ModelBody::PerEntity(_) => crate::hostmodel::KIND,
        }
    }
}

impl ModelHeader {
    /// The model's kind from the header alone (`PerEntityNegBin` for `dist=negbin`).
    pub fn kind(&self) -> &'static str {
        if self.params.dist == DistKind::NegBin {
            crate::hostmodel::KIND
        } else {
            "DensityFunction"
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub header: ModelHeader,
    pub body: ModelBody,
}

/// Appends a group key: each by-field value as a little-endian u32 length and its bytes, so keys of
/// different value splits never collide (MLTK's `"_".join` does).
pub fn encode_key<'a>(values: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
}

/// Splits a key made by [`encode_key`] back into its values.
pub fn decode_key(mut key: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while key.len() >= 4 {
        let n = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize;
        let end = (4 + n).min(key.len());
        out.push(&key[4..end]);
        key = &key[end..];
    }
    out
}

/// Orders by-field values as a person reads them: numbers by value (so `9` < `10`), then text.
pub fn natural_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let num = |s: &[u8]| {
        std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|x| x.is_finite())
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x
            .partial_cmp(&y)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Compares two encoded keys field by field with [`natural_cmp`].
pub fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (da, db) = (decode_key(a), decode_key(b));
    for (x, y) in da.iter().zip(db.iter()) {
        let o = natural_cmp(x, y);
        if o.is_ne() {
            return o;
        }
    }
    da.len().cmp(&db.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_never_collide() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_key([&b"1_2"[..], b"3"], &mut a);
        encode_key([&b"1"[..], b"2_3"], &mut b);
        assert_ne!(a, b);
        assert_eq!(decode_key(&a), vec![&b"1_2"[..], b"3"]);
    }

    #[test]
    fn key_canonicalisation() {
        let canon = |k: KeyCanon, v: &str| {
            let mut out = Vec::new();
            k.push_key_value(v.as_bytes(), &mut out);
            String::from_utf8(decode_key(&out)[0].to_vec()).unwrap()
        };
        assert_eq!(canon(KeyCanon::Integer, "07"), "7");
        assert_eq!(canon(KeyCanon::Integer, "00"), "0");
        assert_eq!(canon(KeyCanon::Integer, "-0"), "0");
        assert_eq!(canon(KeyCanon::Integer, "+12"), "12");
        assert_eq!(canon(KeyCanon::Integer, "-012"), "-12");
        assert_eq!(canon(KeyCanon::Integer, "7.0"), "7.0");
        assert_eq!(canon(KeyCanon::Integer, "Monday"), "Monday");
        assert_eq!(canon(KeyCanon::Integer, ""), "");
        assert_eq!(canon(KeyCanon::Text, "07"), "07");
        assert_eq!(canon(KeyCanon::Bool, "TRUE"), "True");
        assert_eq!(canon(KeyCanon::Bool, "false"), "False");
        assert_eq!(canon(KeyCanon::Bool, "yes"), "yes");
    }

    #[test]
    fn natural_order_puts_hours_in_numeric_order() {
        let mut keys: Vec<Vec<u8>> = ["10", "9", "09", "Monday", "00"]
            .iter()
            .map(|v| {
                let mut k = Vec::new();
                encode_key([v.as_bytes()], &mut k);
                k
            })
            .collect();
        keys.sort_by(|a, b| key_cmp(a, b));
        let shown: Vec<_> = keys
            .iter()
            .map(|k| String::from_utf8(decode_key(k)[0].to_vec()).unwrap())
            .collect();
        assert_eq!(shown, ["00", "09", "9", "10", "Monday"]);
    }
}
