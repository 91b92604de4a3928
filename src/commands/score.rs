//! Scoring rows against a density model: MLTK's output columns (`IsOutlier(<field>)`, `BoundaryRanges`,
//! `__mv_BoundaryRanges`, `ProbabilityDensity(<field>)`) and their values. Shared by `fit`, which scores
//! its training rows, and `apply`.
//!
//! Boundaries and their text depend only on (group, threshold), so each group's text is built once per
//! process, on first use, and every later row of that group reuses it.

use super::rows::write_field;
use crate::density::rng::Rng;
use crate::density::{BoundaryRange, is_outlier, pyfmt};
use crate::model::{FlatDensity, KeyCanon};
use crate::protocol::body::{FieldValue, Header, field_value};
use crate::spl::ThresholdSet;

/// The settings in effect for one scoring pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub feature: String,
    pub by_fields: Vec<String>,
    pub thresholds: ThresholdSet,
    pub show_density: bool,
    pub output_name: Option<String>,
    /// `full_sample=true`: a `FullSampledValue` column.
    pub full_sample: bool,
    /// `sample=true`: a `SampledValue` column per threshold.
    pub sample: bool,
    /// `show_options`: the `_Options` JSON text.
    pub options_json: Option<String>,
    /// Seeds the sampled values (`random_state`).
    pub seed: u64,
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
        if self.full_sample {
            cols.push("FullSampledValue".to_string());
        }
        if self.sample {
            cols.extend(suffixes.iter().map(|s| format!("SampledValue{s}")));
        }
        if self.options_json.is_some() {
            cols.push("_Options".to_string());
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
#[inline]
pub fn parse_number(v: &[u8]) -> Option<f64> {
    // Fast path: short unsigned integer text (counts) converts exactly, as `str::parse` would.
    if !v.is_empty() && v.len() <= 15 && v.iter().all(u8::is_ascii_digit) {
        let n = v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        return Some(n as f64);
    }
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

/// The outputs of the groups used so far under the current thresholds, built on a group's first use
/// into shared arenas (no allocation per group).
#[derive(Default)]
struct GroupTexts {
    /// Per group: its entry number plus one, or 0 until built.
    entry: Vec<u32>,
    /// Per entry, `thresholds + 1` offsets into `ranges`: threshold `k`'s ranges run from the `k`th to
    /// the next.
    range_offsets: Vec<u32>,
    ranges: Vec<BoundaryRange>,
    /// Per entry, where its tail starts in `cells` (it ends where the next one starts).
    tail_starts: Vec<usize>,
    /// The `BoundaryRanges` and `__mv_BoundaryRanges` cells of every entry as CSV bytes, each preceded
    /// by a comma.
    cells: Vec<u8>,
    /// Scratch: one threshold's raw text and mv cells.
    text: Vec<u8>,
    mv: Vec<u8>,
    /// Scratch: the mv cells, CSV-quoted, of the thresholds before the last.
    mv_cells: Vec<u8>,
}

impl GroupTexts {
    /// Entry `e`'s ranges under threshold `k` of `nt`.
    #[inline]
    fn ranges(&self, nt: usize, e: usize, k: usize) -> &[BoundaryRange] {
        let o = e * (nt + 1) + k;
        &self.ranges[self.range_offsets[o] as usize..self.range_offsets[o + 1] as usize]
    }
}

/// The groups' keys, looked up without owning a copy: an open-addressing table over the model's key
/// buffer (linear probing, at most half full). A slot holds the group number plus one in its low 32
/// bits (0: empty, so the table starts as untouched zero pages) and the high half of the key's hash in
/// its high 32 bits, so probing past other keys reads no key bytes.
struct GroupIndex {
    slots: Vec<u64>,
    mask: usize,
    hasher: foldhash::fast::FixedState,
}

const EMPTY_SLOT: u64 = 0;

impl GroupIndex {
    /// Indexes every group of `flat`; of groups with equal keys the last one wins.
    fn new(flat: &FlatDensity) -> GroupIndex {
        let n = flat.len();
        assert!(
            n < u32::MAX as usize,
            "too many groups for a u32 group number"
        );
        let cap = (n * 2).next_power_of_two().max(2);
        let mut index = GroupIndex {
            slots: vec![EMPTY_SLOT; cap],
            mask: cap - 1,
            hasher: foldhash::fast::FixedState::with_seed(0x736d_6264_656e_7331),
        };
        // Hash all keys first (a sequential pass over the key buffer), then insert in batches whose
        // home slots are prefetched, so the random slot accesses overlap.
        const BATCH: usize = 16;
        let mut hashes = [0u64; BATCH];
        let mut start = 0;
        while start < n {
            let end = (start + BATCH).min(n);
            for g in start..end {
                let h = index.hash(flat.key(g));
                hashes[g - start] = h;
                index.prefetch(h as usize & index.mask);
            }
            for g in start..end {
                index.insert(flat, g, hashes[g - start]);
            }
            start = end;
        }
        index
    }

    #[inline]
    fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `i` is within `slots`; a prefetch has no other effect.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i).cast());
        }
    }

    fn insert(&mut self, flat: &FlatDensity, g: usize, h: u64) {
        let tag = h & !0xffff_ffff;
        let mut i = h as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY_SLOT
                || (s & !0xffff_ffff == tag
                    && flat.key((s & 0xffff_ffff) as usize - 1) == flat.key(g))
            {
                self.slots[i] = tag | (g as u64 + 1);
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    #[inline]
    fn get(&self, flat: &FlatDensity, key: &[u8]) -> Option<u32> {
        let h = self.hash(key);
        let tag = h & !0xffff_ffff;
        let mut i = h as usize & self.mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY_SLOT {
                return None;
            }
            if s & !0xffff_ffff == tag && flat.key((s & 0xffff_ffff) as usize - 1) == key {
                return Some(s as u32 - 1);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Scores rows against a model's groups.
pub struct Scorer {
    pub settings: Settings,
    groups: FlatDensity,
    index: GroupIndex,
    /// The key and group of the last row looked up: rows arrive grouped by time, so runs are common.
    last: Option<(Vec<u8>, Option<u32>)>,
    integral: bool,
    /// Per by-field key canonicalisation (empty for native models: text as received).
    key_canon: Vec<KeyCanon>,
    /// The stored boundaries match the settings' thresholds.
    use_stored: bool,
    /// Built on first use: a million groups cost four bytes each until used.
    texts: GroupTexts,
    key: Vec<u8>,
    rng: Rng,
    pub issues: RowIssues,
}

impl Scorer {
    /// Takes a model's groups. `stored_thresholds` are the thresholds its boundaries were computed for.
    pub fn new(settings: Settings, body: FlatDensity, stored_thresholds: &ThresholdSet) -> Scorer {
        let index = GroupIndex::new(&body);
        let use_stored = settings.thresholds.items == stored_thresholds.items;
        let settings_seed = settings.seed;
        let texts = GroupTexts {
            entry: vec![0; body.len()],
            ..Default::default()
        };
        Scorer {
            settings,
            integral: body.integral_feature,
            key_canon: body.key_canon.clone(),
            groups: body,
            index,
            last: None,
            use_stored,
            texts,
            key: Vec::new(),
            rng: Rng::new(settings_seed),
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

    /// Builds group `g`'s outputs if not yet built, and returns its entry number.
    #[inline]
    fn group_entry(&mut self, g: usize) -> usize {
        match self.texts.entry[g] {
            0 => self.build_entry(g),
            e => e as usize - 1,
        }
    }

    #[cold]
    #[inline(never)]
    fn build_entry(&mut self, g: usize) -> usize {
        let t = &mut self.texts;
        let e = t.tail_starts.len();
        let stored = self.groups.boundaries(g);
        let dist = self.groups.dist(g);
        // Models may leave out boundaries that are cheap to recompute (see `model::store`).
        let nt = self.settings.thresholds.items.len();
        t.range_offsets.push(t.ranges.len() as u32);
        if self.use_stored && !stored.is_empty() {
            for r in stored.iter().take(nt) {
                t.ranges.extend_from_slice(r);
                t.range_offsets.push(t.ranges.len() as u32);
            }
            for _ in stored.len()..nt {
                t.range_offsets.push(t.ranges.len() as u32);
            }
        } else {
            for th in &self.settings.thresholds.items {
                t.ranges.extend(dist.boundaries(*th, self.integral));
                t.range_offsets.push(t.ranges.len() as u32);
            }
        }
        t.tail_starts.push(t.cells.len());
        t.mv_cells.clear();
        let offs = &t.range_offsets[e * (nt + 1)..];
        for k in 0..nt {
            let ranges = &t.ranges[offs[k] as usize..offs[k + 1] as usize];
            t.text.clear();
            t.mv.clear();
            for (i, b) in ranges.iter().enumerate() {
                if i > 0 {
                    t.text.push(b'\n');
                    t.mv.push(b';');
                }
                let line = t.text.len();
                b.write_text_bytes(&mut t.text);
                t.mv.push(b'$');
                for &c in &t.text[line..] {
                    if c == b'$' {
                        t.mv.push(b'$');
                    }
                    t.mv.push(c);
                }
                t.mv.push(b'$');
            }
            t.cells.push(b',');
            write_field(&mut t.cells, &t.text);
            t.mv_cells.push(b',');
            write_field(&mut t.mv_cells, &t.mv);
        }
        t.cells.extend_from_slice(&t.mv_cells);
        t.entry[g] = e as u32 + 1;
        e
    }

    /// Entry `e`'s ranges under threshold `k`.
    #[inline]
    fn ranges(&self, e: usize, k: usize) -> &[BoundaryRange] {
        self.texts
            .ranges(self.settings.thresholds.items.len(), e, k)
    }

    /// Entry `e`'s `BoundaryRanges` and `__mv_BoundaryRanges` cells as CSV bytes, each after a comma.
    #[inline]
    fn tail(&self, e: usize) -> &[u8] {
        let t = &self.texts;
        let end = t.tail_starts.get(e + 1).copied().unwrap_or(t.cells.len());
        &t.cells[t.tail_starts[e]..end]
    }

    /// Reads the row's feature value and finds its group, counting the rows that get empty outputs.
    #[inline]
    fn classify(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
    ) -> Option<(f64, u32)> {
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
        }?;
        self.key.clear();
        for (i, c) in cols.by.iter().enumerate() {
            let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
            // Models imported from MLTK match integer and boolean by-fields by value (`07` finds
            // MLTK's group `7`); native models match the text as received.
            let canon = self.key_canon.get(i).copied().unwrap_or_default();
            canon.push_key_value(v, &mut self.key);
        }
        let g = match &self.last {
            Some((k, g)) if *k == self.key => *g,
            _ => {
                let g = self.index.get(&self.groups, &self.key);
                match &mut self.last {
                    Some((k, last)) => {
                        k.clear();
                        k.extend_from_slice(&self.key);
                        *last = g;
                    }
                    None => self.last = Some((self.key.clone(), g)),
                }
                g
            }
        };
        if g.is_none() {
            self.issues.unseen_group += 1;
        }
        self.issues.scored += u64::from(g.is_some());
        Some((x, g?))
    }

    /// Appends this row's output cells to `out`.
    pub fn score_row(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
        out: &mut csv::ByteRecord,
    ) {
        let Some((x, g)) = self.classify(header, cols, rec) else {
            for _ in 0..self.width() {
                out.push_field(b"");
            }
            return;
        };
        let show_density = self.settings.show_density;
        let density = show_density.then(|| self.groups.dist(g as usize).pdf(x));
        let e = self.group_entry(g as usize);
        let nt = self.settings.thresholds.items.len();
        for k in 0..nt {
            out.push_field(if is_outlier(self.ranges(e, k), x) {
                b"1.0"
            } else {
                b"0.0"
            });
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&self.tail(e)[1..]);
        let mut cells = csv::ByteRecord::new();
        rdr.read_byte_record(&mut cells).expect("our own CSV");
        for c in cells.iter() {
            out.push_field(c);
        }
        if let Some(d) = density {
            out.push_field(pyfmt::repr(d).as_bytes());
        }
        if self.settings.full_sample || self.settings.sample {
            self.push_samples(g as usize, out);
        }
        if let Some(o) = &self.settings.options_json {
            out.push_field(o.as_bytes());
        }
    }

    fn push_samples(&mut self, g: usize, out: &mut csv::ByteRecord) {
        let dist = self.groups.dist(g);
        if self.settings.full_sample {
            out.push_field(pyfmt::repr(dist.sample(&mut self.rng)).as_bytes());
        }
        if self.settings.sample {
            let e = self.texts.entry[g] as usize - 1;
            let nt = self.settings.thresholds.items.len();
            for k in 0..nt {
                let r = self.texts.ranges(nt, e, k);
                match dist.sample_inlier(r, &mut self.rng) {
                    Some(x) => out.push_field(pyfmt::repr(x).as_bytes()),
                    None => out.push_field(b""),
                }
            }
        }
    }

    /// Appends this row's output cells to `out` as CSV bytes, each preceded by a comma: what
    /// [`Scorer::score_row`] and the CSV writer would produce, from per-group precomputed bytes.
    #[inline]
    pub fn append_cells(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
        out: &mut Vec<u8>,
    ) {
        let hit = self.classify(header, cols, rec);
        self.append_hit(hit, out);
    }

    /// Appends the output cells of a row whose value and group (an index into the model's groups) are
    /// already known, or the empty cells of a row that gets none: what [`Scorer::append_cells`] appends
    /// after looking them up.
    #[inline]
    pub fn append_hit(&mut self, hit: Option<(f64, u32)>, out: &mut Vec<u8>) {
        let Some((x, g)) = hit else {
            for _ in 0..self.width() {
                out.push(b',');
            }
            return;
        };
        let show_density = self.settings.show_density;
        let density = show_density.then(|| self.groups.dist(g as usize).pdf(x));
        let e = self.group_entry(g as usize);
        for k in 0..self.settings.thresholds.items.len() {
            let o = is_outlier(self.ranges(e, k), x);
            out.extend_from_slice(if o { b",1.0" } else { b",0.0" });
        }
        out.extend_from_slice(self.tail(e));
        if let Some(d) = density {
            out.push(b',');
            pyfmt::write_repr_bytes(out, d);
        }
        if self.settings.full_sample || self.settings.sample || self.settings.options_json.is_some()
        {
            let mut rec = csv::ByteRecord::new();
            if self.settings.full_sample || self.settings.sample {
                self.push_samples(g as usize, &mut rec);
            }
            if let Some(o) = &self.settings.options_json {
                rec.push_field(o.as_bytes());
            }
            for f in rec.iter() {
                out.push(b',');
                write_field(out, f);
            }
        }
    }

    /// Restarts the random draws of `sample`/`full_sample` from the seed, so scoring the same rows
    /// again writes the same cells (`fit` scores its rows twice: once to measure the reply).
    pub fn restart_draws(&mut self) {
        self.rng = Rng::new(self.settings.seed);
    }

    /// The number of output cells per row.
    pub fn width(&self) -> usize {
        let n = self.settings.thresholds.items.len();
        let s = &self.settings;
        3 * n
            + usize::from(s.show_density)
            + usize::from(s.full_sample)
            + if s.sample { n } else { 0 }
            + usize::from(s.options_json.is_some())
    }
}

/// Python's `json.dumps` text of a JSON value (`", "` and `": "` separators, ASCII escapes), as MLTK's
/// `_Options` column prints it.
pub fn python_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn go(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => string(s, out),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out);
                    out.push_str(": ");
                    go(x, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    go(v, &mut out);
    out
}

/// MLTK's `_Options`: the requested keys (comma-separated, spaces ignored) of the command's options,
/// in the requested order; unknown keys are skipped.
pub fn options_json(keys: &str, available: &[(&str, serde_json::Value)]) -> String {
    let mut picked = serde_json::Map::new();
    for k in keys.replace(' ', "").split(',') {
        if let Some((_, v)) = available.iter().find(|(name, _)| *name == k) {
            picked.insert(k.to_string(), v.clone());
        }
    }
    python_json(&serde_json::Value::Object(picked))
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
            full_sample: false,
            sample: false,
            options_json: None,
            seed: 0,
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
