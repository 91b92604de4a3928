//! `fit smbdensity <count> by "<f,...>" entity=<field> [dist=negbin] [into <model>] [threshold=<p>]
//! [min_increase=<n>]`: the per-entity count model ([`crate::hostmodel`]) as an `events` command.
//!
//! Every chunk's rows are summarised as they arrive (per entity and by-group: sum and sum of squares;
//! per entity: its first hour; one hour → by-group timeline) and spilled to a file; after the last chunk
//! the model is fitted, saved, and the training rows come back scored.

use std::collections::HashMap;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use super::entity_score::{EntityScorer, EntitySettings};
use super::score::parse_number;
use super::spill::{Spill, temp_file};
use super::{Context, Output, ReplyBody, SearchCommand};
use crate::density::{DistKind, Threshold};
use crate::error::{Error, Result};
use crate::hostmodel::fit::{Accumulator, FitConfig};
use crate::hostmodel::{DEFAULT_MIN_INCREASE, DEFAULT_THRESHOLD, PerEntityBody};
use crate::model::{Model, ModelBody, ModelHeader, StoredParams};
use crate::protocol::body::{BodyReader, FieldValue, field_value};
use crate::protocol::metadata::Reply;
use crate::spl::{self, FitArgs, Metric, ThresholdSet};

pub struct FitEntity {
    args: FitArgs,
    ctx: Context,
    entity: String,
    threshold: f64,
    min_increase: f64,
    acc: Accumulator,
    spill: Option<Spill>,
    columns: Vec<Vec<u8>>,
    column_index: HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
    rows: u64,
    non_numeric: u64,
    missing: u64,
    bad_time: u64,
    done: bool,
}

/// The argument checks of a per-entity fit; `Ok(None)` when `entity=` is not given.
pub fn entity_of(args: &FitArgs) -> Result<Option<String>> {
    let p = &args.params;
    match (&p.entity, p.dist) {
        (None, Some(DistKind::NegBin)) => Err(Error::Data(
            "dist=negbin needs entity=<field> (for example entity=src): it fits one count model per entity"
                .into(),
        )),
        (None, _) => {
            if p.min_increase.is_some() {
                return Err(Error::Data(
                    "min_increase applies to per-entity models only: add entity=<field> dist=negbin".into(),
                ));
            }
            Ok(None)
        }
        (Some(_), Some(d)) if d != DistKind::NegBin => Err(Error::Data(format!(
            "entity= needs dist=negbin (the per-entity count model), not dist={}",
            d.param()
        ))),
        (Some(e), _) if e.is_empty() => Err(Error::Data("entity= needs a field name".into())),
        (Some(e), _) => Ok(Some(e.clone())),
    }
}

impl FitEntity {
    pub fn new(ctx: &Context, args: FitArgs, entity: String) -> Result<FitEntity> {
        let p = &args.params;
        if p.lower_threshold.is_some() || p.show_density == Some(true) || p.show_options.is_some() {
            return Err(Error::Data(
                "per-entity models take threshold=<p> (or upper_threshold=<p>) and min_increase=<n>; lower_threshold, show_density and show_options do not apply".into(),
            ));
        }
        if p.sample == Some(true) || p.full_sample == Some(true) || args.options.partial_fit {
            return Err(Error::Data(
                "sample, full_sample and partial_fit are not supported by per-entity models".into(),
            ));
        }
        let threshold = single_threshold(p.threshold.as_deref().or(p.upper_threshold.as_deref()))?
            .unwrap_or(DEFAULT_THRESHOLD);
        if args.by.len() > ctx.env.config.max_fields_in_by_clause {
            return Err(Error::Data(format!(
                "The number of fields in the by clause cannot exceed {}",
                ctx.env.config.max_fields_in_by_clause
            )));
        }
        if args.by.contains(&entity) || args.feature == entity {
            return Err(Error::Data(format!(
                "entity={entity} must not also be the feature or a by-field"
            )));
        }
        Ok(FitEntity {
            min_increase: p.min_increase.unwrap_or(DEFAULT_MIN_INCREASE),
            threshold,
            entity,
            args,
            ctx: ctx.clone(),
            acc: Accumulator::default(),
            spill: None,
            columns: Vec::new(),
            column_index: HashMap::new(),
            key: Vec::new(),
            rows: 0,
            non_numeric: 0,
            missing: 0,
            bad_time: 0,
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
        if header.is_empty() {
            return Ok(());
        }
        let feature = header.find(&self.args.feature);
        let entity = header.find(&self.entity);
        let time = header.find("_time");
        let by: Vec<Option<usize>> = self.args.by.iter().map(|f| header.find(f)).collect();
        let max_entities = self.ctx.env.config.max_groups;
        let mut rec = csv::ByteRecord::new();
        while reader
            .read(&mut rec)
            .map_err(|source| Error::Body { chunk, source })?
        {
            self.rows += 1;
            let x = match field_value(&header, &rec, feature) {
                FieldValue::One(v) => {
                    let x = parse_number(&v);
                    if x.is_none() {
                        self.non_numeric += 1;
                    }
                    x
                }
                FieldValue::Empty => None,
                FieldValue::Many(_) => {
                    self.non_numeric += 1;
                    None
                }
            };
            let Some(x) = x else { continue };
            let Some(t) = time
                .and_then(|c| rec.get(c))
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite())
            else {
                self.bad_time += 1;
                continue;
            };
            let name = entity.and_then(|c| rec.get(c)).unwrap_or(b"");
            self.key.clear();
            let mut complete = !name.is_empty();
            for c in &by {
                let v = c.and_then(|c| rec.get(c)).unwrap_or(b"");
                complete &= !v.is_empty();
                self.key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.key.extend_from_slice(v);
            }
            if !complete {
                self.missing += 1;
                continue;
            }
            self.acc.push(name, &self.key, t, x);
            if self.acc.entity_count() > max_entities {
                return Err(Error::Data(format!(
                    "The number of entities can not exceed {max_entities}. Raise max_groups in smbdensity.conf."
                )));
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        let acc = std::mem::take(&mut self.acc);
        let used = acc.rows;
        let conflicts = acc.slot_conflicts;
        let body = acc
            .finish(&self.entity, &FitConfig::default(), self.threshold, self.min_increase)
            .ok_or_else(|| {
                Error::Data(if !self.column_index.contains_key(b"_time".as_slice()) {
                    "A per-entity fit needs the _time field (hourly buckets, as tstats ... by _time span=1h gives them)".to_string()
                } else if !self.column_index.contains_key(self.entity.as_bytes()) {
                    format!("Field \"{}\" not present.", self.entity)
                } else if self.non_numeric > 0 {
                    format!("Feature \"{}\" is not a numeric type", self.args.feature)
                } else {
                    "No valid events; check for null or non-numeric values in numeric fields".to_string()
                })
            })?;
        let skipped = self.rows - used;
        if skipped > 0 {
            out.warn(format!(
                "{skipped} rows were not used for fitting ({} with an empty or non-numeric \"{}\", {} without a usable _time, {} with an empty \"{}\" or by-field)",
                skipped - self.bad_time - self.missing,
                self.args.feature,
                self.bad_time,
                self.missing,
                self.entity
            ));
        }
        if conflicts > 0 {
            out.warn(format!(
                "{conflicts} rows fell in an hour that other rows put in another by-group: the by-fields should be functions of _time (such as HourOfDay and DayOfWeek) for silent hours to be counted as zeros"
            ));
        }
        if let Some(name) = self.args.into.clone() {
            let header = ModelHeader {
                algorithm: self.args.algorithm.clone(),
                feature: self.args.feature.clone(),
                by_fields: self.args.by.clone(),
                params: self.stored_params(),
                args: self.ctx.info.args.clone(),
                app: self.ctx.info.app.clone(),
                owner: self.ctx.info.owner.clone(),
                group_count: body.entities.len() as u64,
                created: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            };
            let model = Model {
                header,
                body: ModelBody::PerEntity(body),
            };
            let max = self
                .ctx
                .env
                .config
                .max_model_size_mb
                .saturating_mul(1 << 20);
            let path = self.ctx.env.store()?.save(&name, &model, max)?;
            let ModelBody::PerEntity(body) = model.body else {
                unreachable!("built above")
            };
            out.info(format!(
                "Saved model \"{}\" ({} entities, {} groups) to {}",
                name.name,
                body.entities.len(),
                body.slots.len(),
                path.display()
            ));
            self.write_scored(body, out)
        } else {
            self.write_scored(body, out)
        }
    }

    fn stored_params(&self) -> StoredParams {
        StoredParams {
            dist: DistKind::NegBin,
            exclude_dist: Vec::new(),
            metric: Metric::Wasserstein,
            thresholds: ThresholdSet::single(Threshold::Upper(self.threshold)),
            show_density: false,
            sample: false,
            full_sample: false,
            show_options: None,
            output_name: self.args.output_name.clone(),
            random_state: None,
        }
    }

    fn write_scored(&mut self, body: PerEntityBody, out: &mut Output) -> Result<()> {
        let settings = EntitySettings {
            feature: self.args.feature.clone(),
            by_fields: self.args.by.clone(),
            threshold: self.threshold,
            min_increase: self.min_increase,
            output_name: self.args.output_name.clone(),
        };
        let score = self.args.options.apply;
        let out_cols = if score {
            settings.output_columns()
        } else {
            Vec::new()
        };
        let kept: Vec<usize> = (0..self.columns.len())
            .filter(|&i| !out_cols.iter().any(|c| c.as_bytes() == self.columns[i]))
            .collect();
        let mut scorer = EntityScorer::new(settings, body);
        let file = temp_file(self.dispatch_dir())?;
        let mut w = crate::protocol::body::body_writer(BufWriter::with_capacity(1 << 20, file));
        let mut rec_out = csv::ByteRecord::new();
        for &i in &kept {
            rec_out.push_field(&self.columns[i]);
        }
        for c in &out_cols {
            rec_out.push_field(c.as_bytes());
        }
        w.write_byte_record(&rec_out)?;
        let union_index = &self.column_index;
        let spill = self.spill.take().expect("spill exists until finish");
        let mut rec = csv::ByteRecord::new();
        let mut chunk_no = 0;
        spill.replay(|_tag, chunk| {
            chunk_no += 1;
            let mut reader = BodyReader::new(chunk).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })?;
            let header = reader.header.clone();
            let mut pos = vec![None; union_index.len()];
            for (i, n) in header.names.iter().enumerate() {
                pos[union_index[n]] = Some(i);
            }
            let cols = scorer.columns(&header);
            while reader.read(&mut rec).map_err(|source| Error::Body {
                chunk: chunk_no,
                source,
            })? {
                rec_out.clear();
                for &u in &kept {
                    rec_out.push_field(pos[u].and_then(|i| rec.get(i)).unwrap_or(b""));
                }
                if score {
                    scorer.score_row(&header, &cols, &rec, &mut rec_out);
                }
                w.write_byte_record(&rec_out)?;
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

/// The one threshold of a per-entity model (several are refused), validated like MLTK's.
pub fn single_threshold(given: Option<&[f64]>) -> Result<Option<f64>> {
    match given {
        None => Ok(None),
        Some([t]) if (1e-9..=1.0).contains(t) => Ok(Some(*t)),
        Some([_]) => Err(Error::Args(spl::ArgError(
            "Parameter \"threshold\" must be between 0.000000001 and 1".into(),
        ))),
        Some(_) => Err(Error::Data(
            "per-entity models take a single threshold".into(),
        )),
    }
}

impl SearchCommand for FitEntity {
    fn getinfo(&self) -> Reply {
        Reply {
            kind: Some("events"),
            ..Default::default()
        }
    }

    fn execute(&mut self, body: &[u8], finished: bool, chunk: u64, out: &mut Output) -> Result<()> {
        if self.ctx.preview {
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
        self.spill.as_mut().expect("just created").push(0, body)?;
        if finished {
            self.done = true;
            self.finish(out)?;
        }
        Ok(())
    }
}
