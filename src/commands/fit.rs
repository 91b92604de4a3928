//! `fit smbdensity|DensityFunction <field> [by "..."] [into <model>] ...`: an `events` command that reads
//! every chunk, fits one distribution per group, saves the model, and returns the training rows scored.
//!
//! Groups keep streaming statistics, so memory grows with the number of groups, not rows; the rows
//! themselves wait in a spill file until the final chunk.

use std::collections::HashMap;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use super::score::{Columns, Scorer, Settings, is_integer_text, parse_number};
use super::spill::{Spill, temp_file};
use super::{Context, Output, ReplyBody, SearchCommand};
use crate::density::{
    DistKind, Distribution, Exponential, GroupStats, Normal, REPLACE_ZERO_STD, Threshold,
};
use crate::error::{Error, Result};
use crate::model::{DensityBody, Group, Model, ModelBody, ModelHeader, StoredParams, key_cmp};
use crate::protocol::body::{BodyReader, FieldValue, Header, body_writer, field_value};
use crate::protocol::metadata::Reply;
use crate::spl::{self, FitArgs, Metric, ThresholdSet};

/// Training data of all groups, accumulated chunk by chunk.
#[derive(Default)]
struct Training {
    index: HashMap<Vec<u8>, usize>,
    keys: Vec<Vec<u8>>,
    stats: Vec<GroupStats>,
    /// Every value of the feature seen so far was integer text.
    integral: bool,
    rows: u64,
    valid: u64,
    non_numeric: u64,
    missing_by: u64,
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
    done: bool,
}

impl Fit {
    pub fn new(ctx: &Context) -> Result<Fit> {
        let args = spl::parse_fit(&ctx.info.args)?;
        let limits = &ctx.env.config;
        let dist = args.params.dist.unwrap_or(DistKind::Auto);
        if !matches!(dist, DistKind::Normal | DistKind::Exponential) {
            return Err(Error::Data(format!(
                "dist={} is not supported yet by this version of smbdensity; use dist=norm or dist=expon",
                dist.param()
            )));
        }
        for (given, name) in [
            (args.params.sample, "sample"),
            (args.params.full_sample, "full_sample"),
        ] {
            if given == Some(true) {
                return Err(Error::Data(format!(
                    "{name}=true is not supported yet by this version of smbdensity"
                )));
            }
        }
        // entity= and min_increase= go to the per-entity fit (fit_entity), never here.
        if args.params.show_options.is_some() {
            return Err(Error::Data(
                "show_options is not supported yet by this version of smbdensity".into(),
            ));
        }
        if args.options.partial_fit {
            return Err(Error::Data(
                "partial_fit=true is not supported yet by this version of smbdensity".into(),
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
        Ok(Fit {
            args,
            ctx: ctx.clone(),
            dist,
            thresholds,
            training: Training {
                integral: true,
                ..Default::default()
            },
            spill: None,
            columns: Vec::new(),
            column_index: HashMap::new(),
            key: Vec::new(),
            done: false,
        })
    }

    fn dispatch_dir(&self) -> Option<&std::path::Path> {
        Some(std::path::Path::new(&self.ctx.info.dispatch_dir))
            .filter(|p| !p.as_os_str().is_empty())
    }

    fn absorb(&mut self, body: &[u8], chunk: u64) -> Result<()> {
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        for name in &reader.header.names {
            if !self.column_index.contains_key(name) {
                self.column_index.insert(name.clone(), self.columns.len());
                self.columns.push(name.clone());
            }
        }
        let header = reader.header.clone();
        let feature = header.find(&self.args.feature);
        let by: Vec<Option<usize>> = self.args.by.iter().map(|f| header.find(f)).collect();
        let max_groups = self.ctx.env.config.max_groups;
        let t = &mut self.training;
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
            let Some(x) = x else {
                t.integral = false;
                continue;
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
                continue;
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
                    t.keys.len() - 1
                }
            };
            t.stats[g].push(x);
            t.valid += 1;
        }
        Ok(())
    }

    /// Fits every group. Returns the model body and the warnings MLTK would give.
    fn fit_groups(&mut self, out: &mut Output) -> Result<DensityBody> {
        let t = std::mem::take(&mut self.training);
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
        let min_size = self.ctx.env.config.min_data_size_to_fit;
        let mut few = false;
        let mut constant_fallbacks = 0u64;
        let mut groups = Vec::with_capacity(order.len());
        let (keys, stats) = (t.keys, t.stats);
        let mut keys: Vec<Option<Vec<u8>>> = keys.into_iter().map(Some).collect();
        for g in order {
            let s = stats[g].clone();
            few |= s.count < min_size;
            let dist = match self.dist {
                DistKind::Exponential if s.is_constant() => {
                    constant_fallbacks += 1;
                    Distribution::Normal(Normal {
                        mean: s.mean,
                        std: REPLACE_ZERO_STD,
                    })
                }
                DistKind::Exponential => Distribution::Exponential(Exponential::fit(&s)),
                _ => Distribution::Normal(Normal::fit(&s)),
            };
            let boundaries = self
                .thresholds
                .items
                .iter()
                .map(|th| dist.boundaries(*th, t.integral))
                .collect();
            groups.push(Group {
                key: keys[g].take().expect("each group once"),
                stats: s,
                dist,
                boundaries,
            });
        }
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

    fn finish(&mut self, out: &mut Output) -> Result<()> {
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
                unreachable!("built above")
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
        };
        let score = self.args.options.apply;
        let out_cols = if score {
            settings.output_columns()
        } else {
            Vec::new()
        };
        // Input columns that our outputs replace are dropped, with their multivalue companions.
        let replaced = |name: &[u8]| {
            let base = name.strip_prefix(b"__mv_").unwrap_or(name);
            out_cols
                .iter()
                .any(|c| c.as_bytes() == name || c.as_bytes() == base)
        };
        let kept: Vec<usize> = (0..self.columns.len())
            .filter(|&i| !replaced(&self.columns[i]))
            .collect();
        let mut scorer = Scorer::new(settings, body, &params.thresholds);
        let file = temp_file(self.dispatch_dir())?;
        let mut w = body_writer(BufWriter::with_capacity(1 << 20, file));
        let mut header_rec = csv::ByteRecord::new();
        for &i in &kept {
            header_rec.push_field(&self.columns[i]);
        }
        for c in &out_cols {
            header_rec.push_field(c.as_bytes());
        }
        w.write_byte_record(&header_rec).map_err(csv_io)?;
        let union_index = &self.column_index;
        let spill = self.spill.take().expect("spill exists until finish");
        let mut out_rec = csv::ByteRecord::new();
        let mut rec = csv::ByteRecord::new();
        let mut chunk_no = 0;
        spill.replay(|chunk| {
            chunk_no += 1;
            let mut reader = BodyReader::new(chunk).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })?;
            let header: Header = reader.header.clone();
            // Where each union column sits in this chunk.
            let mut pos = vec![None; union_index.len()];
            for (i, n) in header.names.iter().enumerate() {
                pos[union_index[n]] = Some(i);
            }
            let cols: Columns = scorer.columns(&header);
            while reader.read(&mut rec).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })? {
                out_rec.clear();
                for &u in &kept {
                    out_rec.push_field(pos[u].and_then(|i| rec.get(i)).unwrap_or(b""));
                }
                if score {
                    scorer.score_row(&header, &cols, &rec, &mut out_rec);
                }
                w.write_byte_record(&out_rec).map_err(csv_io)?;
            }
            Ok(())
        })?;
        let mut file = w
            .into_inner()
            .map_err(|e| Error::Io(e.into_error()))?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.flush()?;
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        out.body = ReplyBody::File { file, len };
        Ok(())
    }
}

fn csv_io(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}

impl SearchCommand for Fit {
    fn getinfo(&self) -> Reply {
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
        self.absorb(body, chunk)?;
        if self.spill.is_none() {
            self.spill = Some(Spill::new(self.dispatch_dir())?);
        }
        self.spill.as_mut().expect("just created").push(body)?;
        if finished {
            self.done = true;
            self.finish(out)?;
        }
        Ok(())
    }
}
