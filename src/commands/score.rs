//! Scoring rows against a density model: MLTK's output columns (`IsOutlier(<field>)`, `BoundaryRanges`,
//! `__mv_BoundaryRanges`, `ProbabilityDensity(<field>)`) and their values. Shared by `fit`, which scores
//! its training rows, and `apply`.
//!
//! Boundaries and their text depend only on (group, threshold), so each group's text is built once per
//! process, on first use, and every later row of that group reuses it.

use std::collections::HashMap;

use crate::density::{BoundaryRange, is_outlier, pyfmt};
use crate::model::{DensityBody, Group};
use crate::protocol::body::{FieldValue, Header, field_value, mv_encode};
use crate::spl::ThresholdSet;

/// The settings in effect for one scoring pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub feature: String,
    pub by_fields: Vec<String>,
    pub thresholds: ThresholdSet,
    pub show_density: bool,
    pub output_name: Option<String>,
}

impl Settings {
    /// MLTK's output column names, in MLTK's order.
    pub fn output_columns(&self) -> Vec<String> {
        let t = &self.thresholds;
        let suffixes: Vec<String> = if t.is_multiple() {
            t.labels.iter().map(|l| format!("_th={l}")).collect()
        } else {
            vec![String::new()]
        };
        let mut cols = Vec::new();
        for s in &suffixes {
            cols.push(match &self.output_name {
                Some(name) => format!("{name}{s}"),
                None => format!("IsOutlier{s}({})", self.feature),
            });
        }
        cols.extend(suffixes.iter().map(|s| format!("BoundaryRanges{s}")));
        cols.extend(suffixes.iter().map(|s| format!("__mv_BoundaryRanges{s}")));
        if self.show_density {
            cols.push(format!("ProbabilityDensity({})", self.feature));
        }
        cols
    }
}

/// Why rows got empty outputs, counted over a whole search for one WARN.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowIssues {
    pub scored: u64,
    pub empty_value: u64,
    pub non_numeric: u64,
    pub unseen_group: u64,
    /// Non-numeric rows seen in the current chunk, and rows with any value there.
    pub(super) chunk_non_numeric: u64,
    pub(super) chunk_valued: u64,
}

impl RowIssues {
    /// The one WARN message for the search, if any row went unscored.
    pub fn warning(&self, feature: &str) -> Option<String> {
        let mut parts = Vec::new();
        if self.unseen_group > 0 {
            parts.push(format!(
                "Some of the data groups do not have a distribution in the model: {} rows got empty outputs",
                self.unseen_group
            ));
        }
        let bad = self.empty_value + self.non_numeric;
        if bad > 0 {
            parts.push(format!(
                "{bad} rows had an empty or non-numeric \"{feature}\" ({} empty, {} not a finite number) and got empty outputs",
                self.empty_value, self.non_numeric
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Starts counting a new chunk.
    pub fn start_chunk(&mut self) {
        self.chunk_non_numeric = 0;
        self.chunk_valued = 0;
    }

    /// True when the chunk had values for the feature and not one of them was a number: the field
    /// itself is not numeric, which is an error rather than a bad row.
    pub fn chunk_all_non_numeric(&self) -> bool {
        self.chunk_valued > 0 && self.chunk_non_numeric == self.chunk_valued
    }
}

/// Parses a feature value. Only finite numbers in plain decimal or exponent notation count.
pub fn parse_number(v: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(v).ok()?;
    // Rust also accepts "inf", "nan" and "infinity"; those are not counts.
    if !s
        .as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// True when `v` is integer text, which pandas would type as int64.
pub fn is_integer_text(v: &[u8]) -> bool {
    let d = v
        .strip_prefix(b"-")
        .or_else(|| v.strip_prefix(b"+"))
        .unwrap_or(v);
    !d.is_empty() && d.len() <= 18 && d.iter().all(u8::is_ascii_digit)
}

/// The columns one chunk's header gives for the feature and the by-fields.
pub struct Columns {
    feature: Option<usize>,
    by: Vec<Option<usize>>,
}

/// The text outputs of one group under the current thresholds.
struct GroupText {
    ranges: Vec<Vec<BoundaryRange>>,
    text: Vec<Vec<u8>>,
    mv: Vec<Vec<u8>>,
}

/// Scores rows against a model's groups.
pub struct Scorer {
    pub settings: Settings,
    groups: Vec<Group>,
    index: HashMap<Vec<u8>, u32>,
    integral: bool,
    /// The stored boundaries match the settings' thresholds.
    use_stored: bool,
    texts: Vec<Option<GroupText>>,
    key: Vec<u8>,
    pub issues: RowIssues,
}

impl Scorer {
    /// Takes a model's groups. `stored_thresholds` are the thresholds its boundaries were computed for.
    pub fn new(
        settings: Settings,
        mut body: DensityBody,
        stored_thresholds: &ThresholdSet,
    ) -> Scorer {
        let mut index = HashMap::with_capacity(body.groups.len());
        for (i, g) in body.groups.iter_mut().enumerate() {
            index.insert(std::mem::take(&mut g.key), i as u32);
        }
        let use_stored = settings.thresholds.items == stored_thresholds.items;
        let texts = (0..body.groups.len()).map(|_| None).collect();
        Scorer {
            settings,
            groups: body.groups,
            index,
            integral: body.integral_feature,
            use_stored,
            texts,
            key: Vec::new(),
            issues: RowIssues::default(),
        }
    }

    pub fn columns(&self, header: &Header) -> Columns {
        Columns {
            feature: header.find(&self.settings.feature),
            by: self
                .settings
                .by_fields
                .iter()
                .map(|f| header.find(f))
                .collect(),
        }
    }

    fn group_text(&mut self, g: usize) -> &GroupText {
        if self.texts[g].is_none() {
            let group = &self.groups[g];
            let ranges: Vec<Vec<BoundaryRange>> = if self.use_stored {
                group.boundaries.clone()
            } else {
                self.settings
                    .thresholds
                    .items
                    .iter()
                    .map(|t| group.dist.boundaries(*t, self.integral))
                    .collect()
            };
            let mut text = Vec::with_capacity(ranges.len());
            let mut mv = Vec::with_capacity(ranges.len());
            for r in &ranges {
                let lines: Vec<String> = r
                    .iter()
                    .map(|b| {
                        let mut s = String::new();
                        b.write_text(&mut s);
                        s
                    })
                    .collect();
                text.push(lines.join("\n").into_bytes());
                mv.push(mv_encode(lines.iter()));
            }
            self.texts[g] = Some(GroupText { ranges, text, mv });
        }
        self.texts[g].as_ref().expect("just filled")
    }

    /// Appends this row's output cells to `out`.
    pub fn score_row(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
        out: &mut csv::ByteRecord,
    ) {
        let x = match field_value(header, rec, cols.feature) {
            FieldValue::Empty => {
                self.issues.empty_value += 1;
                None
            }
            FieldValue::One(v) => {
                self.issues.chunk_valued += 1;
                let x = parse_number(&v);
                if x.is_none() {
                    self.issues.non_numeric += 1;
                    self.issues.chunk_non_numeric += 1;
                }
                x
            }
            FieldValue::Many(_) => {
                self.issues.chunk_valued += 1;
                self.issues.non_numeric += 1;
                self.issues.chunk_non_numeric += 1;
                None
            }
        };
        let group = x.and_then(|_| {
            self.key.clear();
            for c in &cols.by {
                let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
                self.key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.key.extend_from_slice(v);
            }
            let g = self.index.get(&self.key).copied();
            if g.is_none() {
                self.issues.unseen_group += 1;
            }
            g
        });
        let (Some(x), Some(g)) = (x, group) else {
            for _ in 0..self.width() {
                out.push_field(b"");
            }
            return;
        };
        self.issues.scored += 1;
        let show_density = self.settings.show_density;
        let density = show_density.then(|| self.groups[g as usize].dist.pdf(x));
        let t = self.group_text(g as usize);
        for r in &t.ranges {
            out.push_field(if is_outlier(r, x) { b"1.0" } else { b"0.0" });
        }
        for s in &t.text {
            out.push_field(s);
        }
        for s in &t.mv {
            out.push_field(s);
        }
        if let Some(d) = density {
            out.push_field(pyfmt::repr(d).as_bytes());
        }
    }

    /// The number of output cells per row.
    pub fn width(&self) -> usize {
        3 * self.settings.thresholds.items.len() + usize::from(self.settings.show_density)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::Threshold;

    #[test]
    fn column_names_follow_mltk() {
        let mut s = Settings {
            feature: "count".into(),
            by_fields: vec![],
            thresholds: ThresholdSet::single(Threshold::Total(0.01)),
            show_density: true,
            output_name: None,
        };
        assert_eq!(
            s.output_columns(),
            [
                "IsOutlier(count)",
                "BoundaryRanges",
                "__mv_BoundaryRanges",
                "ProbabilityDensity(count)"
            ]
        );
        s.thresholds =
            crate::spl::resolve_thresholds(Some(&[0.01, 0.05]), None, None, 0.01, 5).unwrap();
        s.output_name = Some("anomaly".into());
        s.show_density = false;
        assert_eq!(
            s.output_columns(),
            [
                "anomaly_th=0.01",
                "anomaly_th=0.05",
                "BoundaryRanges_th=0.01",
                "BoundaryRanges_th=0.05",
                "__mv_BoundaryRanges_th=0.01",
                "__mv_BoundaryRanges_th=0.05"
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"12"), Some(12.0));
        assert_eq!(parse_number(b"-1.5e3"), Some(-1500.0));
        for bad in [
            &b"inf"[..],
            b"NaN",
            b"1e400",
            b"1,024",
            b"12k",
            b"",
            b" 1",
            b"\xff",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
        assert!(is_integer_text(b"-12") && !is_integer_text(b"12.0") && !is_integer_text(b""));
    }
}
