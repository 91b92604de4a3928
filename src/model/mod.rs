//! Saved models: what a fit stores and apply, summary and listmodels read back.
//!
//! A model is a small [`ModelHeader`] (enough to answer getinfo and listmodels without decoding the
//! groups) and a [`ModelBody`] with one entry per group. Nothing from `searchinfo` but the app and the
//! owner is ever stored.

pub mod store;

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
