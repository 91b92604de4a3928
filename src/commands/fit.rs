//! `fit smbdensity|DensityFunction <field> [by "..."] [into <model>] ...`: an `events` command that reads
//! every chunk, fits one distribution per group, saves the model, and returns the training rows scored.
//!
//! Groups keep streaming statistics, so memory grows with the number of groups, not rows; the rows
//! themselves wait in a spill file until the final chunk.

use std::collections::HashMap;
use std::io::Write;

use super::Context;
use super::fit_parallel::{self, FitOptions};
use super::rows;
use super::score::{Columns, Scorer, Settings, is_integer_text, options_json, parse_number};
use super::spill::{RAW, Spill, spill_chunk};
use crate::density::reservoir::Reservoir;
use crate::density::rng::Rng;
use crate::density::{DistKind, GroupStats, REPLACE_ZERO_STD, Threshold};
use crate::error::{Error, Result};
use crate::model::{DensityBody, Group, Model, ModelBody, ModelHeader, StoredParams, key_cmp};
use crate::spl::{self, FitArgs, Metric, ThresholdSet};
use scpv2::body::{BodyReader, FieldValue, Header, field_value};
use scpv2::metadata::Reply;
use scpv2::{Command, Output, ReplyBody, StreamedBody};

/// Training data of all groups, accumulated chunk by chunk.
struct Training {
    index: HashMap<Vec<u8>, usize, foldhash::fast::RandomState>,
    keys: Vec<Vec<u8>>,
    stats: Vec<GroupStats>,
    /// Per-group reservoirs of values, for distributions fitted on values (capacity 0 otherwise).
    samples: Vec<Reservoir>,
    sample_cap: usize,
    rng: Rng,
    /// Every value of the feature seen so far was integer text.
    integral: bool,
    rows: u64,
    valid: u64,
    non_numeric: u64,
    missing_by: u64,
}

impl Training {
    fn new(sample_cap: usize, seed: u64) -> Training {
        Training {
            index: HashMap::default(),
            keys: Vec::new(),
            stats: Vec::new(),
            samples: Vec::new(),
            sample_cap,
            rng: Rng::new(seed),
            integral: true,
            rows: 0,
            valid: 0,
            non_numeric: 0,
            missing_by: 0,
        }
    }
}

/// The group of a compact record whose row gets empty outputs.
///
/// Compact records: per row, a little-endian u32 group (its index in first-seen order, or `NO_GROUP`),
/// the f64 value when there is a group, a u32 length and the row's CSV bytes as the reply copies them
/// (all of the chunk's columns, without a terminator; see [`rows::write_input`]).
const NO_GROUP: u32 = u32::MAX;

/// The most training values a model stores per group (MLTK's `_data` holds up to 10,000).
const STORED_SAMPLE: usize = 10_000;

/// How many training values per group a distribution needs kept: KDE stores at most
/// `max_kde_parameter_size` points; Beta and auto selection use up to MLTK's `max_inputs` (100,000).
fn sample_capacity(dist: DistKind, max_kde: usize) -> usize {
    match dist {
        // Only for the `distance` that summary shows.
        DistKind::Normal | DistKind::Exponential => 1_000,
        DistKind::GaussianKde => max_kde,
        DistKind::Beta | DistKind::Auto => 100_000,
        // Per-entity models are fitted by fit_entity, never here.
        DistKind::NegBin => 0,
    }
}

pub struct Fit {
    args: FitArgs,
    ctx: Context,
    dist: DistKind,
    thresholds: ThresholdSet,
    training: Training,
    spill: Option<Spill>,
    /// The union of the input columns over all chunks, in order of first appearance.
    columns: Vec<Vec<u8>>,
    column_index: HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
    /// The current chunk's compact records.
    records: Vec<u8>,
    /// Each group's index in the model (groups are sorted at fit), by first-seen index.
    model_index: Vec<u32>,
    done: bool,
}

impl Fit {
    pub fn new(ctx: &Context) -> Result<Fit> {
        let args = spl::parse_fit(&ctx.info.args)?;
        let limits = &ctx.env.config;
        let dist = args.params.dist.unwrap_or(DistKind::Auto);
        // entity= and min_increase= go to the per-entity fit (fit_entity), never here.
        if args.options.partial_fit && args.into.is_none() {
            return Err(Error::Data(
                "partial_fit=true needs a model to update: add \"into <model>\"".into(),
            ));
        }
        if args.by.len() > limits.max_fields_in_by_clause {
            return Err(Error::Data(format!(
                "The number of fields in the by clause cannot exceed {}",
                limits.max_fields_in_by_clause
            )));
        }
        const SUMMARY_FIELDS: [&str; 8] = [
            "type",
            "min",
            "max",
            "mean",
            "std",
            "cardinality",
            "distance",
            "other",
        ];
        if args.into.is_some() {
            if let Some(f) = args
                .by
                .iter()
                .find(|f| SUMMARY_FIELDS.contains(&f.as_str()))
            {
                return Err(Error::Data(format!(
                    "The field \"{f}\" conflicts with summary field names \"{}\". Please rename \"{f}\".",
                    SUMMARY_FIELDS.join(", ")
                )));
            }
        }
        let thresholds = args
            .params
            .thresholds(limits.default_prob_threshold, limits.max_threshold_num)?;
        let seed = args.params.random_state.unwrap_or(0) as u64;
        Ok(Fit {
            args,
            ctx: ctx.clone(),
            dist,
            thresholds,
            training: Training::new(sample_capacity(dist, limits.max_kde_parameter_size), seed),
            spill: None,
            columns: Vec::new(),
            column_index: HashMap::new(),
            key: Vec::new(),
            records: Vec::new(),
            model_index: Vec::new(),
            done: false,
        })
    }

    /// Accumulates one chunk's rows into the groups' statistics.
    ///
    /// When the chunk's header is the union of all headers so far (the normal case) its rows are also
    /// recorded in `self.records` as compact records (see [`NO_GROUP`]): each row's group and value and the
    /// bytes the reply will copy, so the final pass neither parses CSV nor looks groups up again.
    /// Returns the spill tag of the chunk: [`RAW`] when the raw body must be spilled instead.
    fn absorb(&mut self, body: &[u8], chunk: u64) -> Result<u32> {
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        for name in &reader.header.names {
            if !self.column_index.contains_key(name) {
                self.column_index.insert(name.clone(), self.columns.len());
                self.columns.push(name.clone());
            }
        }
        let header = reader.header.clone();
        let compact = !self.args.options.partial_fit
            && !header.is_empty()
            && header.names[..] == self.columns[..];
        let bytes = reader.bytes();
        let feature = header.find(&self.args.feature);
        let by: Vec<Option<usize>> = self.args.by.iter().map(|f| header.find(f)).collect();
        let max_groups = self.ctx.env.config.max_groups;
        let t = &mut self.training;
        let records = &mut self.records;
        records.clear();
        let mut rec = csv::ByteRecord::new();
        while reader
            .read(&mut rec)
            .map_err(|source| Error::Body { chunk, source })?
        {
            t.rows += 1;
            let x = match field_value(&header, &rec, feature) {
                FieldValue::One(v) => {
                    let x = parse_number(&v);
                    if x.is_some() && !is_integer_text(&v) {
                        t.integral = false;
                    }
                    if x.is_none() {
                        t.non_numeric += 1;
                    }
                    x
                }
                FieldValue::Empty => None,
                FieldValue::Many(_) => {
                    t.non_numeric += 1;
                    None
                }
            };
            let hit = 'hit: {
                let Some(x) = x else {
                    t.integral = false;
                    break 'hit None;
                };
                self.key.clear();
                let mut complete = true;
                for c in &by {
                    let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
                    complete &= !v.is_empty();
                    self.key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    self.key.extend_from_slice(v);
                }
                if !complete {
                    t.missing_by += 1;
                    break 'hit None;
                }
                let g = match t.index.get(&self.key) {
                    Some(&g) => g,
                    None => {
                        if t.keys.len() >= max_groups {
                            return Err(Error::Data(format!(
                                "The number of groups can not exceed {max_groups}; the current number of groups is more than {max_groups}. Raise max_groups in smbdensity.conf or use fewer by-fields."
                            )));
                        }
                        t.index.insert(self.key.clone(), t.keys.len());
                        t.keys.push(self.key.clone());
                        t.stats.push(GroupStats::default());
                        t.samples.push(Reservoir::default());
                        t.keys.len() - 1
                    }
                };
                t.stats[g].push(x);
                t.samples[g].push(x, t.sample_cap, &mut t.rng);
                t.valid += 1;
                Some((x, g as u32))
            };
            if compact {
                match hit {
                    Some((x, g)) => {
                        records.extend_from_slice(&g.to_le_bytes());
                        records.extend_from_slice(&x.to_le_bytes());
                    }
                    None => records.extend_from_slice(&NO_GROUP.to_le_bytes()),
                }
                let len_at = records.len();
                records.extend_from_slice(&[0; 4]);
                rows::write_input(records, bytes, &rec, None);
                let len = (records.len() - len_at - 4) as u32;
                records[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
        Ok(if compact {
            self.columns.len() as u32
        } else {
            RAW
        })
    }

    /// Fits every group. Returns the model body and the warnings MLTK would give.
    fn fit_groups(&mut self, out: &mut Output) -> Result<DensityBody> {
        let t = std::mem::replace(&mut self.training, Training::new(0, 0));
        if t.valid == 0 {
            return Err(Error::Data(if t.non_numeric > 0 {
                format!("Feature \"{}\" is not a numeric type", self.args.feature)
            } else if self.column_index.contains_key(self.args.feature.as_bytes()) || t.rows == 0 {
                "No valid events; check for null or non-numeric values in numeric fields"
                    .to_string()
            } else {
                format!("Field \"{}\" not present.", self.args.feature)
            }));
        }
        let mut order: Vec<usize> = (0..t.keys.len()).collect();
        order.sort_by(|&a, &b| key_cmp(&t.keys[a], &t.keys[b]));
        self.model_index = vec![0; order.len()];
        for (j, &g) in order.iter().enumerate() {
            self.model_index[g] = j as u32;
        }
        let min_size = self.ctx.env.config.min_data_size_to_fit;
        let mut few = false;
        let mut constant_fallbacks = 0u64;
        let mut groups = Vec::with_capacity(order.len());
        let (keys, stats, mut samples) = (t.keys, t.stats, t.samples);
        let max_kde = self.ctx.env.config.max_kde_parameter_size;
        let seed = self.args.params.random_state.unwrap_or(0) as u64;
        let metric = self.args.params.metric.unwrap_or(Metric::Wasserstein);
        let exclude = self.args.params.exclude_dist.clone();
        let opts = FitOptions {
            dist: self.dist,
            metric,
            exclude: &exclude,
            max_kde,
            seed,
            thresholds: &self.thresholds.items,
            integral: t.integral,
        };
        let threads = fit_parallel::threads_for(self.dist, order.len());
        let mut keys: Vec<Option<Vec<u8>>> = keys.into_iter().map(Some).collect();
        let deliver = |g: usize, f: fit_parallel::Fitted, values: Vec<f64>| {
            let s = stats[g].clone();
            few |= s.count < min_size;
            constant_fallbacks += u64::from(f.fallback);
            let keep_sample = matches!(
                self.dist,
                DistKind::GaussianKde | DistKind::Beta | DistKind::Auto
            );
            // The stored sample is capped like MLTK's `_data` (10,000 values), so models stay small.
            let sample = match keep_sample {
                false => Vec::new(),
                true if values.len() <= STORED_SAMPLE => values,
                true => crate::density::kde::sample_indices(values.len(), STORED_SAMPLE, seed)
                    .into_iter()
                    .map(|i| values[i])
                    .collect(),
            };
            groups.push(Group {
                key: keys[g].take().expect("each group once"),
                stats: s,
                dist: f.dist,
                distance: f.distance,
                sample,
                boundaries: f.boundaries,
            });
        };
        fit_parallel::fit_each(&opts, &order, &stats, &mut samples, threads, deliver);
        if few {
            out.warn(if self.args.by.is_empty() {
                "Too few training points in data set will likely result in poor accuracy. Please see model summary."
            } else {
                "Too few training points in some groups will likely result in poor accuracy for those groups. Please see model summary to inspect such groups."
            });
        }
        if self.dist == DistKind::Exponential
            && self
                .thresholds
                .items
                .iter()
                .any(|th| matches!(th, Threshold::Lower(_) | Threshold::LowerUpper(..)))
        {
            out.warn("Exponential Distribution type can have an outlier region only at the right tail. Ignoring \"lower_threshold\" value for Exponential distribution.");
        }
        if constant_fallbacks > 0 {
            out.warn(format!(
                "{constant_fallbacks} groups have constant \"{}\" and cannot fit dist={}; they use a Normal with std {REPLACE_ZERO_STD} instead",
                self.args.feature,
                self.dist.param()
            ));
        }
        if t.missing_by > 0 {
            out.warn(format!(
                "{} rows with an empty by-field value were not used for fitting",
                t.missing_by
            ));
        }
        if t.non_numeric > 0 {
            out.warn(format!(
                "{} rows with a non-numeric \"{}\" were not used for fitting",
                t.non_numeric, self.args.feature
            ));
        }
        Ok(DensityBody {
            integral_feature: t.integral,
            groups,
            key_canon: Vec::new(),
        })
    }

    fn stored_params(&self) -> StoredParams {
        let p = &self.args.params;
        StoredParams {
            dist: self.dist,
            exclude_dist: p.exclude_dist.clone(),
            metric: p.metric.unwrap_or(Metric::Wasserstein),
            thresholds: self.thresholds.clone(),
            show_density: p.show_density.unwrap_or(false),
            sample: p.sample.unwrap_or(false),
            full_sample: p.full_sample.unwrap_or(false),
            show_options: p.show_options.clone(),
            output_name: self.args.output_name.clone(),
            random_state: p.random_state,
        }
    }

    /// `partial_fit=true` on an existing model: its groups' statistics are merged in front of the new
    /// rows' (so the result equals one fit over all rows), and its parameters win over the new ones.
    fn merge_existing(&mut self, out: &mut Output) -> Result<()> {
        let name = self.args.into.clone().expect("checked in new()");
        let store = self.ctx.env.store()?;
        let model = match store.load(&name) {
            Ok(m) => m,
            Err(crate::model::store::StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let h = &model.header;
        if h.feature != self.args.feature || h.by_fields != self.args.by {
            return Err(Error::Data(format!(
                "partial_fit: model \"{}\" was fitted on \"{}\" by {:?}; this search fits \"{}\" by {:?}",
                name.name, h.feature, h.by_fields, self.args.feature, self.args.by
            )));
        }
        let p = &self.args.params;
        if p.dist.is_some()
            || p.has_threshold()
            || p.show_density.is_some()
            || self.args.output_name.is_some()
        {
            out.warn("Partial fit on existing model ignores newly supplied parameters. Parameters used in the existing model will be used.");
        }
        self.dist = h.params.dist;
        self.thresholds = h.params.thresholds.clone();
        self.args.params.metric = Some(h.params.metric);
        self.args.params.exclude_dist = h.params.exclude_dist.clone();
        self.args.params.show_density = Some(h.params.show_density);
        self.args.output_name = h.params.output_name.clone();
        let ModelBody::Density(body) = model.body else {
            return Err(Error::Data(format!(
                "partial_fit: model \"{}\" is a per-entity model; refit it with entity=",
                name.name
            )));
        };
        let t = &mut self.training;
        t.integral &= body.integral_feature;
        for g in body.groups {
            t.valid += g.stats.count;
            match t.index.get(&g.key) {
                Some(&i) => {
                    let mut merged = g.stats.clone();
                    merged.merge(&t.stats[i]);
                    t.stats[i] = merged;
                    let mut r = Reservoir::resume(g.sample, g.stats.count);
                    for x in std::mem::take(&mut t.samples[i].values) {
                        r.push(x, t.sample_cap, &mut t.rng);
                    }
                    t.samples[i] = r;
                }
                None => {
                    if t.keys.len() >= self.ctx.env.config.max_groups {
                        return Err(Error::Data(format!(
                            "The number of groups exceeds the max ({}) specified in smbdensity.conf",
                            self.ctx.env.config.max_groups
                        )));
                    }
                    t.index.insert(g.key.clone(), t.keys.len());
                    t.keys.push(g.key);
                    t.samples.push(Reservoir::resume(g.sample, g.stats.count));
                    t.stats.push(g.stats);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        if self.args.options.partial_fit {
            self.merge_existing(out)?;
        }
        let body = self.fit_groups(out)?;
        let params = self.stored_params();
        if let Some(name) = &self.args.into {
            let header = ModelHeader {
                algorithm: self.args.algorithm.clone(),
                feature: self.args.feature.clone(),
                by_fields: self.args.by.clone(),
                params: params.clone(),
                args: self.ctx.info.args.clone(),
                app: self.ctx.info.app.clone(),
                owner: self.ctx.info.owner.clone(),
                group_count: body.groups.len() as u64,
                created: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            };
            let model = Model {
                header,
                body: ModelBody::Density(body),
            };
            let store = self.ctx.env.store()?;
            let max = self
                .ctx
                .env
                .config
                .max_model_size_mb
                .saturating_mul(1 << 20);
            let path = store.save(name, &model, max)?;
            out.info(format!(
                "Saved model \"{}\" ({} groups) to {}",
                name.name,
                model.header.group_count,
                path.display()
            ));
            let ModelBody::Density(body) = model.body else {
                unreachable!("this fit built a DensityFunction model")
            };
            self.write_scored(body, params, out)
        } else {
            self.write_scored(body, params, out)
        }
    }

    /// Replays the spilled input and writes every row with its scores into the reply body.
    fn write_scored(
        &mut self,
        body: DensityBody,
        params: StoredParams,
        out: &mut Output,
    ) -> Result<()> {
        let settings = Settings {
            feature: self.args.feature.clone(),
            by_fields: self.args.by.clone(),
            thresholds: params.thresholds.clone(),
            show_density: params.show_density,
            output_name: params.output_name.clone(),
            full_sample: params.full_sample,
            sample: params.sample,
            options_json: params.show_options.as_deref().map(|keys| {
                options_json(
                    keys,
                    &options_for_show(
                        &self.args.feature,
                        &self.args.by,
                        &self.args.params.raw,
                        &self.args.into,
                        &self.args.algorithm,
                        &self.args.output_name,
                    ),
                )
            }),
            seed: params.random_state.unwrap_or(0) as u64,
        };
        let score = self.args.options.apply;
        let out_cols = if score {
            settings.output_columns()
        } else {
            Vec::new()
        };
        // Input columns that our outputs replace are dropped, with their multivalue companions.
        let kept = rows::kept_columns(&self.columns, &out_cols);
        let mut scored = ScoredRows {
            scorer: Scorer::new(settings, body.into(), &params.thresholds),
            spill: self.spill.take().expect("spill exists until finish"),
            columns: std::mem::take(&mut self.columns),
            column_index: std::mem::take(&mut self.column_index),
            model_index: std::mem::take(&mut self.model_index),
            kept,
            out_cols,
            score,
        };
        // A dry pass measures the reply, so the rows can then go straight into it: no reply file.
        let len = scored.write(&mut std::io::sink())?;
        out.body = ReplyBody::Stream(StreamedBody {
            len,
            write: Box::new(move |w| scored.write(w).map_err(std::io::Error::other)),
        });
        Ok(())
    }
}

/// The final reply of `fit`: every spilled input row with its scores.
struct ScoredRows {
    scorer: Scorer,
    spill: Spill,
    /// The union of the input columns, and where each sits in it.
    columns: Vec<Vec<u8>>,
    column_index: HashMap<Vec<u8>, usize>,
    model_index: Vec<u32>,
    /// The input columns the reply keeps, by union index.
    kept: Vec<usize>,
    out_cols: Vec<String>,
    score: bool,
}

impl ScoredRows {
    /// Replays the spill and writes the reply body to `w`; returns its length. Deterministic, so a
    /// dry run into a sink measures exactly what a second run writes.
    fn write(&mut self, w: &mut dyn Write) -> Result<u64> {
        let mut written = 0u64;
        let mut emit = |buf: &mut Vec<u8>| -> Result<()> {
            w.write_all(buf)?;
            written += buf.len() as u64;
            buf.clear();
            Ok(())
        };
        let (kept, columns, out_cols, score) =
            (&self.kept, &self.columns, &self.out_cols, self.score);
        let scorer = &mut self.scorer;
        scorer.restart_draws();
        // Rows are built as CSV bytes, copying each input record raw where it can (see `rows`).
        let mut buf = Vec::with_capacity(1 << 20);
        rows::write_record(
            &mut buf,
            kept.iter()
                .map(|&i| columns[i].as_slice())
                .chain(out_cols.iter().map(|c| c.as_bytes())),
        );
        emit(&mut buf)?;
        let union_index = &self.column_index;
        let model_index = &self.model_index;
        let mut rec = csv::ByteRecord::new();
        let mut chunk_no = 0;
        // Compact records copy as they are when their columns are all the union's and all kept.
        let all_kept = kept.len() == columns.len();
        let mut rebuilt = Vec::new();
        self.spill.replay_again(|tag, chunk| {
            chunk_no += 1;
            let chunk = if tag != RAW && all_kept && tag as usize == columns.len() {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (hit, row) = next_record(&mut rest, model_index);
                    buf.extend_from_slice(row);
                    if score {
                        scorer.append_hit(hit, &mut buf);
                    }
                    buf.push(b'\n');
                    if buf.len() >= 1 << 20 {
                        emit(&mut buf)?;
                    }
                }
                return Ok(());
            } else if tag != RAW {
                // Columns were added or replaced after this chunk: rebuild its body and score it as
                // any other.
                rebuilt.clear();
                rows::write_record(
                    &mut rebuilt,
                    columns[..tag as usize].iter().map(|c| c.as_slice()),
                );
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (_, row) = next_record(&mut rest, model_index);
                    rebuilt.extend_from_slice(row);
                    rebuilt.push(b'\n');
                }
                &rebuilt[..]
            } else {
                chunk
            };
            let mut reader = BodyReader::new(chunk).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })?;
            let header: Header = reader.header.clone();
            let bytes = reader.bytes();
            // Where each union column sits in this chunk.
            let mut pos = vec![None; union_index.len()];
            for (i, n) in header.names.iter().enumerate() {
                pos[union_index[n]] = Some(i);
            }
            // The kept columns are exactly this chunk's columns, in order: rows can be copied as is.
            let identity = kept.len() == header.len()
                && kept.iter().enumerate().all(|(k, &u)| pos[u] == Some(k));
            let cols: Columns = scorer.columns(&header);
            while reader.read(&mut rec).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })? {
                let row_start = buf.len();
                if identity {
                    rows::write_input(&mut buf, bytes, &rec, None);
                } else {
                    for (k, &u) in kept.iter().enumerate() {
                        if k > 0 {
                            buf.push(b',');
                        }
                        rows::write_field(&mut buf, pos[u].and_then(|i| rec.get(i)).unwrap_or(b""));
                    }
                }
                if score {
                    scorer.append_cells(&header, &cols, &rec, &mut buf);
                    if kept.is_empty() {
                        buf.remove(row_start);
                    }
                }
                buf.push(b'\n');
                if buf.len() >= 1 << 20 {
                    emit(&mut buf)?;
                }
            }
            Ok(())
        })?;
        emit(&mut buf)?;
        Ok(written)
    }
}

impl Command for Fit {
    type Error = Error;

    fn getinfo(&mut self) -> Reply {
        Reply {
            kind: Some("events"),
            ..Default::default()
        }
    }

    fn execute(&mut self, body: &[u8], finished: bool, chunk: u64, out: &mut Output) -> Result<()> {
        if self.ctx.preview {
            // MLTK answers preview runs without doing any work or saving anything.
            out.finished = Some(true);
            return Ok(());
        }
        if self.done {
            return Ok(());
        }
        let tag = self.absorb(body, chunk)?;
        let dir = super::spill::dispatch_dir(&self.ctx.info);
        spill_chunk(&mut self.spill, dir, tag, body, &self.records)?;
        if finished {
            self.done = true;
            self.finish(out)?;
        }
        Ok(())
    }
}

/// Reads one compact record from the front of `rest`: its model group and value (None for a row that
/// gets empty outputs) and its row bytes.
#[inline]
fn next_record<'a>(rest: &mut &'a [u8], model_index: &[u32]) -> (Option<(f64, u32)>, &'a [u8]) {
    let u32_at = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let r = *rest;
    let g = u32_at(r);
    let (hit, r) = if g == NO_GROUP {
        (None, &r[4..])
    } else {
        let x = f64::from_le_bytes(r[4..12].try_into().expect("8 bytes"));
        (Some((x, model_index[g as usize])), &r[12..])
    };
    let len = u32_at(r) as usize;
    let row = &r[4..4 + len];
    *rest = &r[4 + len..];
    (hit, row)
}

/// The option keys `show_options` can pick from, as MLTK names them.
pub fn options_for_show(
    feature: &str,
    by: &[String],
    raw: &[(String, String)],
    model: &Option<spl::ModelName>,
    algorithm: &str,
    output_name: &Option<String>,
) -> Vec<(&'static str, serde_json::Value)> {
    let params: serde_json::Map<String, serde_json::Value> = raw
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut v = vec![
        ("feature_variables", serde_json::json!([feature])),
        ("split_by", serde_json::json!(by)),
        ("params", serde_json::Value::Object(params)),
        ("algo_name", serde_json::json!(algorithm)),
    ];
    if let Some(m) = model {
        v.push(("model_name", serde_json::json!(m.name)));
    }
    if let Some(o) = output_name {
        v.push(("output_name", serde_json::json!(o)));
    }
    v
}
