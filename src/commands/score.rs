//! Scoring rows against a density model: MLTK's output columns (`IsOutlier(<field>)`, `BoundaryRanges`,
//! `__mv_BoundaryRanges`, `ProbabilityDensity(<field>)`) and their values. Shared by `fit`, which scores
//! its training rows, and `apply`.
//!
//! Boundaries and their text depend only on (group, threshold), so each group's text is built once per
//! process, on first use, and every later row of that group reuses it.

use super::rows::write_field;
use crate::density::normal::Tails;
use crate::density::pyfmt::Short;
use crate::density::rng::Rng;
use crate::density::{Area, BoundaryRange, is_outlier, pyfmt};
use crate::model::{FlatDensity, GroupRef, KeyCanon};
use crate::spl::ThresholdSet;
use scpv2::body::{FieldValue, Header, field_value};

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

/// The outputs of groups under the current thresholds. A group's first row gets its cells written
/// straight into the reply; from its second row on they are built once into shared arenas (no
/// allocation per group) and copied. With a million groups most rows are their group's only one in a
/// search, and nothing is kept for them.
#[derive(Default)]
struct GroupTexts {
    /// One bit per group: it had a row already.
    seen: Vec<u64>,
    /// Per group: its entry number plus one, or 0 until built (only read for groups seen before).
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
    /// Scratch: the ranges and offsets of a group written straight into the reply.
    scratch: Vec<BoundaryRange>,
    scratch_offsets: Vec<u32>,
    /// Scratch for [`write_cells`].
    cell: CellScratch,
}

#[derive(Default)]
struct CellScratch {
    /// Where each line of the `BoundaryRanges` cells just written lies in the output.
    lines: Vec<(usize, usize)>,
    /// The last area written, as (kind, bits), and its text: a threshold's ranges share their area.
    area: Option<(u8, u64)>,
    area_text: Vec<u8>,
    area_short: Option<Short>,
}

impl CellScratch {
    /// Appends one range's text, `begin:end:area`.
    #[inline]
    fn write_line(&mut self, b: &BoundaryRange, out: &mut Vec<u8>) {
        let key = match b.area {
            Area::Exact(v) => (0, v.to_bits()),
            Area::Rounded(v) => (1, v.to_bits()),
            Area::Zero => (2, 0),
        };
        if self.area != Some(key) {
            self.area_text.clear();
            b.area.write_bytes(&mut self.area_text);
            self.area_short = Short::new(&self.area_text);
            self.area = Some(key);
        }
        // The common case: the text is written straight into the reply, with no copy in between.
        let start = out.len();
        out.resize(start + 2 * 24 + 2 + 24, 0);
        let line = &mut out[start..];
        let fast = self.area_short.and_then(|a| {
            let mut n = pyfmt::bound_into(b.begin, b.begin_integral, line)?;
            line[n] = b':';
            n += 1;
            n += pyfmt::bound_into(b.end, b.end_integral, &mut line[n..])?;
            line[n] = b':';
            n += 1;
            line[n..n + 24].copy_from_slice(&a.bytes);
            Some(n + a.len)
        });
        match fast {
            Some(n) => out.truncate(start + n),
            None => {
                out.truncate(start);
                b.write_bounds_bytes(out);
                out.extend_from_slice(&self.area_text);
            }
        }
    }
}

impl GroupTexts {
    /// Entry `e`'s ranges under threshold `k` of `nt`.
    #[inline]
    fn ranges(&self, nt: usize, e: usize, k: usize) -> &[BoundaryRange] {
        let o = e * (nt + 1) + k;
        &self.ranges[self.range_offsets[o] as usize..self.range_offsets[o + 1] as usize]
    }

    /// Marks group `g` used; true when it was not before.
    #[inline]
    fn first_use(&mut self, g: usize) -> bool {
        let (w, bit) = (g / 64, 1u64 << (g % 64));
        let first = self.seen[w] & bit == 0;
        self.seen[w] |= bit;
        first
    }
}

/// Appends a group's ranges per threshold to `ranges`, and `thresholds + 1` offsets into it to
/// `offsets`. Models may leave out boundaries that are cheap to recompute (see `model::store`).
#[inline]
fn group_ranges(
    groups: &FlatDensity,
    settings: &Settings,
    use_stored: bool,
    r: GroupRef,
    ranges: &mut Vec<BoundaryRange>,
    offsets: &mut Vec<u32>,
) {
    let nt = settings.thresholds.items.len();
    let stored = groups.boundaries(r);
    offsets.push(ranges.len() as u32);
    if use_stored && !stored.is_empty() {
        for b in stored.iter().take(nt) {
            ranges.extend_from_slice(b);
            offsets.push(ranges.len() as u32);
        }
        for _ in stored.len()..nt {
            offsets.push(ranges.len() as u32);
        }
    } else {
        let dist = groups.dist(r);
        for th in &settings.thresholds.items {
            dist.boundaries_into(*th, groups.integral_feature, ranges);
            offsets.push(ranges.len() as u32);
        }
    }
}

/// Appends the `BoundaryRanges` cells (one per threshold) and then the `__mv_BoundaryRanges` cells of
/// ranges split by `offsets`, each preceded by a comma, as the CSV writer would write them.
///
/// A range's text (`begin:end:area`) is made of digits, `-`, `+`, `.`, `e`, `Infinity`, `nan` and `:`
/// only, so the `\n` that joins a cell's lines is the only byte the writer quotes, and an mv value
/// (each line in `$`, joined by `;`) has no `$` to double and nothing to quote.
#[inline]
fn write_cells(out: &mut Vec<u8>, ranges: &[BoundaryRange], offsets: &[u32], s: &mut CellScratch) {
    s.lines.clear();
    for w in offsets.windows(2) {
        let rs = &ranges[w[0] as usize..w[1] as usize];
        let quoted = rs.len() > 1;
        out.push(b',');
        if quoted {
            out.push(b'"');
        }
        for (i, b) in rs.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let line = out.len();
            s.write_line(b, out);
            debug_assert!(
                !out[line..]
                    .iter()
                    .any(|c| matches!(c, b',' | b'"' | b'\n' | b'\r' | b'$')),
                "range text {:?}",
                String::from_utf8_lossy(&out[line..])
            );
            s.lines.push((line, out.len()));
        }
        if quoted {
            out.push(b'"');
        }
    }
    let mut lines = s.lines.iter();
    for w in offsets.windows(2) {
        out.push(b',');
        for i in 0..w[1] - w[0] {
            if i > 0 {
                out.push(b';');
            }
            let &(a, b) = lines.next().expect("one line per range");
            out.push(b'$');
            out.extend_from_within(a..b);
            out.push(b'$');
        }
    }
}

/// Scores rows against a model's groups.
pub struct Scorer {
    pub settings: Settings,
    groups: FlatDensity,
    /// The key and group of the last row looked up: rows arrive grouped by time, so runs are common.
    last: Option<(Vec<u8>, Option<GroupRef>)>,
    /// Per by-field key canonicalisation (empty for native models: text as received).
    key_canon: Vec<KeyCanon>,
    /// The stored boundaries match the settings' thresholds.
    use_stored: bool,
    /// Built on a group's second use: a million groups cost four bytes and a bit each until then.
    texts: GroupTexts,
    /// Per threshold, its Normal tails (the same for every Normal group).
    tails: Vec<Tails>,
    key: Vec<u8>,
    rng: Rng,
    pub issues: RowIssues,
}

impl Scorer {
    /// Takes a model's groups. `stored_thresholds` are the thresholds its boundaries were computed for.
    pub fn new(settings: Settings, body: FlatDensity, stored_thresholds: &ThresholdSet) -> Scorer {
        let use_stored = settings.thresholds.items == stored_thresholds.items;
        let settings_seed = settings.seed;
        let texts = GroupTexts {
            seen: vec![0; body.len().div_ceil(64)],
            entry: vec![0; body.len()],
            ..Default::default()
        };
        let tails = settings
            .thresholds
            .items
            .iter()
            .map(|&t| Tails::new(t))
            .collect();
        Scorer {
            tails,
            settings,
            key_canon: body.key_canon.clone(),
            groups: body,
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

    /// Group `r`'s entry number, building its outputs if they are not built yet.
    #[inline]
    fn group_entry(&mut self, r: GroupRef) -> usize {
        let g = r.group();
        self.texts.first_use(g);
        match self.texts.entry[g] {
            0 => self.build_entry(r),
            e => e as usize - 1,
        }
    }

    #[cold]
    #[inline(never)]
    fn build_entry(&mut self, r: GroupRef) -> usize {
        let t = &mut self.texts;
        let e = t.tail_starts.len();
        let first = t.range_offsets.len();
        group_ranges(
            &self.groups,
            &self.settings,
            self.use_stored,
            r,
            &mut t.ranges,
            &mut t.range_offsets,
        );
        t.tail_starts.push(t.cells.len());
        write_cells(
            &mut t.cells,
            &t.ranges,
            &t.range_offsets[first..],
            &mut t.cell,
        );
        t.entry[r.group()] = e as u32 + 1;
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

    /// The row's group key.
    #[inline]
    fn row_key(&self, cols: &Columns, rec: &csv::ByteRecord, key: &mut Vec<u8>) {
        key.clear();
        for (i, c) in cols.by.iter().enumerate() {
            let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
            // Models imported from MLTK match integer and boolean by-fields by value (`07` finds
            // MLTK's group `7`); native models match the text as received.
            let canon = self.key_canon.get(i).copied().unwrap_or_default();
            canon.push_key_value(v, key);
        }
    }

    /// True when the model's groups are too large to stay in cache: rows are then best read a few
    /// ahead and their groups prefetched ([`Scorer::prefetch_slot`], [`Scorer::prefetch_record`]).
    pub fn wants_prefetch(&self) -> bool {
        self.groups.table().size() > 4 << 20
    }

    /// Builds the row's group key into `key` and starts fetching its index slots; returns the hash to
    /// pass on with the key.
    #[inline]
    pub fn prefetch_slot(&self, cols: &Columns, rec: &csv::ByteRecord, key: &mut Vec<u8>) -> u64 {
        self.row_key(cols, rec, key);
        let h = self.groups.table().hash(key);
        self.groups.table().prefetch_slot(h);
        h
    }

    /// Starts fetching the record of the group whose key hashed to `h` (its slots fetched earlier).
    #[inline]
    pub fn prefetch_record(&self, h: u64) {
        self.groups.table().prefetch_record(h);
    }

    /// The group of `key`; the last key looked up is remembered.
    #[inline]
    fn lookup(&mut self, key: &[u8]) -> Option<GroupRef> {
        match &mut self.last {
            Some((k, g)) if *k == key => *g,
            last => {
                let g = self.groups.find(key);
                match last {
                    Some((k, last)) => {
                        k.clear();
                        k.extend_from_slice(key);
                        *last = g;
                    }
                    None => *last = Some((key.to_vec(), g)),
                }
                g
            }
        }
    }

    /// Reads the row's feature value and finds its group, counting the rows that get empty outputs.
    #[inline]
    fn classify(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
        pre: Option<(&[u8], u64)>,
    ) -> Option<(f64, GroupRef)> {
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
        let g = match pre {
            // Rows read ahead are a large model's, whose consecutive rows rarely share a group, and
            // their slots and records are in cache already: no remembering of the last key.
            Some((key, h)) => self.groups.table().find_hashed(key, h).map(GroupRef::from),
            None => {
                let mut key = std::mem::take(&mut self.key);
                self.row_key(cols, rec, &mut key);
                let g = self.lookup(&key);
                self.key = key;
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
        let Some((x, r)) = self.classify(header, cols, rec, None) else {
            for _ in 0..self.width() {
                out.push_field(b"");
            }
            return;
        };
        let show_density = self.settings.show_density;
        let density = show_density.then(|| self.groups.dist(r).pdf(x));
        let e = self.group_entry(r);
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
            self.push_samples(r, e, out);
        }
        if let Some(o) = &self.settings.options_json {
            out.push_field(o.as_bytes());
        }
    }

    fn push_samples(&mut self, r: GroupRef, e: usize, out: &mut csv::ByteRecord) {
        let dist = self.groups.dist(r);
        if self.settings.full_sample {
            out.push_field(pyfmt::repr(dist.sample(&mut self.rng)).as_bytes());
        }
        if self.settings.sample {
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
        let hit = self.classify(header, cols, rec, None);
        self.append_found(hit, out);
    }

    /// [`Scorer::append_cells`] for a row whose [`Scorer::prefetch_slot`] gave `key` and `hash`.
    #[inline]
    pub fn append_cells_keyed(
        &mut self,
        header: &Header,
        cols: &Columns,
        rec: &csv::ByteRecord,
        key: &[u8],
        hash: u64,
        out: &mut Vec<u8>,
    ) {
        let hit = self.classify(header, cols, rec, Some((key, hash)));
        self.append_found(hit, out);
    }

    /// Appends the output cells of a row whose value and group (an index into the model's groups) are
    /// already known, or the empty cells of a row that gets none: what [`Scorer::append_cells`] appends
    /// after looking them up.
    #[inline]
    pub fn append_hit(&mut self, hit: Option<(f64, u32)>, out: &mut Vec<u8>) {
        let hit = hit.and_then(|(x, g)| Some((x, self.groups.group(g as usize)?)));
        self.append_found(hit, out);
    }

    #[inline]
    fn append_found(&mut self, hit: Option<(f64, GroupRef)>, out: &mut Vec<u8>) {
        let Some((x, r)) = hit else {
            for _ in 0..self.width() {
                out.push(b',');
            }
            return;
        };
        let show_density = self.settings.show_density;
        let density = show_density.then(|| self.groups.dist(r).pdf(x));
        let nt = self.settings.thresholds.items.len();
        // A group's first row: its cells go straight into the reply (sampled values need the
        // ranges kept, so they always build them).
        let first = self.texts.first_use(r.group()) && !self.settings.sample;
        let normal = self.groups.normal(r).filter(|_| first);
        let e = if let (Some(normal), [tails]) = (normal, &self.tails[..]) {
            // A Normal group's first row under one threshold: its ranges on the stack.
            let (ranges, n) = normal.ranges(tails);
            let ranges = &ranges[..n];
            out.extend_from_slice(if is_outlier(ranges, x) {
                b",1.0"
            } else {
                b",0.0"
            });
            write_cells(out, ranges, &[0, n as u32], &mut self.texts.cell);
            None
        } else if first {
            let t = &mut self.texts;
            t.scratch.clear();
            t.scratch_offsets.clear();
            group_ranges(
                &self.groups,
                &self.settings,
                self.use_stored,
                r,
                &mut t.scratch,
                &mut t.scratch_offsets,
            );
            for w in t.scratch_offsets.windows(2) {
                let o = is_outlier(&t.scratch[w[0] as usize..w[1] as usize], x);
                out.extend_from_slice(if o { b",1.0" } else { b",0.0" });
            }
            write_cells(out, &t.scratch, &t.scratch_offsets, &mut t.cell);
            None
        } else {
            let e = self.group_entry(r);
            for k in 0..nt {
                let o = is_outlier(self.ranges(e, k), x);
                out.extend_from_slice(if o { b",1.0" } else { b",0.0" });
            }
            out.extend_from_slice(self.tail(e));
            Some(e)
        };
        if let Some(d) = density {
            out.push(b',');
            pyfmt::write_repr_bytes(out, d);
        }
        if self.settings.full_sample || self.settings.sample || self.settings.options_json.is_some()
        {
            let mut rec = csv::ByteRecord::new();
            if self.settings.full_sample || self.settings.sample {
                let e = e.unwrap_or(usize::MAX);
                self.push_samples(r, e, &mut rec);
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

    /// The cells written from the range text's known alphabet are what the CSV writer gives for the
    /// text MLTK defines (lines joined by `\n`; mv values in `$`, `$` doubled, joined by `;`).
    #[test]
    fn cells_match_the_csv_writer() {
        use scpv2::body::body_writer;
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.5,
            12345.678901,
            1e-7,
            -3e20,
            1e16,
            0.00012345,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            f64::MAX,
        ];
        let areas = [
            Area::Exact(0.005),
            Area::Exact(5e-5),
            Area::Exact(-0.0),
            Area::Rounded(0.012345),
            Area::Rounded(1e-9),
            Area::Zero,
            Area::Exact(f64::NAN),
        ];
        let mut n = 0;
        let mut scratch = CellScratch::default();
        for (i, &begin) in values.iter().enumerate() {
            for (j, &end) in values.iter().enumerate() {
                for (k, &area) in areas.iter().enumerate() {
                    let r = |b: f64, e: f64, ib: bool, ie: bool| BoundaryRange {
                        begin: b,
                        end: e,
                        area,
                        begin_integral: ib,
                        end_integral: ie,
                    };
                    let ranges = vec![
                        r(begin, end, i % 2 == 0, j % 3 == 0),
                        r(end, begin, k % 2 == 0, false),
                        r(begin, begin, false, true),
                    ];
                    // Two thresholds: zero to three ranges each.
                    let cut = (i + j + k) % 4;
                    let offsets = [0, cut as u32, 3];
                    let mut got = Vec::new();
                    write_cells(&mut got, &ranges, &offsets, &mut scratch);
                    let mut cells: Vec<Vec<u8>> = Vec::new();
                    let mut mvs: Vec<Vec<u8>> = Vec::new();
                    for w in offsets.windows(2) {
                        let rs = &ranges[w[0] as usize..w[1] as usize];
                        let lines: Vec<String> = rs
                            .iter()
                            .map(|b| {
                                let mut s = String::new();
                                b.write_text(&mut s);
                                s
                            })
                            .collect();
                        cells.push(lines.join("\n").into_bytes());
                        mvs.push(
                            lines
                                .iter()
                                .map(|l| format!("${}$", l.replace('$', "$$")))
                                .collect::<Vec<_>>()
                                .join(";")
                                .into_bytes(),
                        );
                    }
                    let mut w = body_writer(Vec::new());
                    let mut rec = csv::ByteRecord::new();
                    rec.push_field(b"x");
                    for c in cells.iter().chain(&mvs) {
                        rec.push_field(c);
                    }
                    w.write_byte_record(&rec).unwrap();
                    let want = w.into_inner().unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want[1..want.len() - 1])
                    );
                    n += 1;
                }
            }
        }
        assert!(n > 1000);
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
