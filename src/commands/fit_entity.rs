//! `fit smbdensity <count> by "<f,...>" entity=<field> [dist=negbin] [into <model>] [threshold=<p>]
//! [min_increase=<n>]`: the per-entity count model ([`crate::hostmodel`]) as an `events` command.
//!
//! Every chunk's rows are summarised as they arrive (per entity and by-group: sum and sum of squares;
//! per entity: its first hour; one hour → by-group timeline) and spilled to a file as compact records
//! (entity, by-group, count, row bytes), so the final pass neither parses CSV nor looks names up again;
//! after the last chunk the model is fitted, saved, and the training rows come back scored.

use std::collections::HashMap;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use super::Context;
use super::entity_score::{EntityScorer, EntitySettings};
use super::rows;
use super::score::parse_number;
use super::spill::{RAW, Spill, spill_chunk, temp_file};
use crate::density::{DistKind, Threshold};
use crate::error::{Error, Result};
use crate::hostmodel::fit::{Accumulator, FitConfig};
use crate::hostmodel::{DEFAULT_MIN_INCREASE, DEFAULT_THRESHOLD, PerEntityBody};
use crate::model::{Model, ModelBody, ModelHeader, StoredParams};
use crate::spl::{self, FitArgs, Metric, ThresholdSet};
use scpv2::body::{BodyReader, FieldValue, field_value};
use scpv2::metadata::Reply;
use scpv2::{Command, Output, ReplyBody};

pub struct FitEntity {
    args: FitArgs,
    ctx: Context,
    entity: String,
    threshold: f64,
    min_increase: f64,
    acc: Accumulator,
    spill: Option<Spill>,
    /// The current chunk's compact records (see [`NO_SCORE`]).
    records: Vec<u8>,
    columns: Vec<Vec<u8>>,
    column_index: HashMap<Vec<u8>, usize>,
    key: Vec<u8>,
    rows: u64,
    non_numeric: u64,
    missing: u64,
    bad_time: u64,
    done: bool,
}

/// The entity number of a compact record whose row gets empty outputs.
///
/// Compact records: per row, a little-endian u32 entity (its number in the accumulator, or
/// `NO_SCORE`), then, unless `NO_SCORE`, the u32 slot number and the f64 count; then a u32 length and
/// the row's CSV bytes as the reply copies them (all of the chunk's columns, without a terminator; see
/// [`rows::write_input`]). A chunk with a row that has a count but was not used for fitting (no
/// `_time`, an empty entity or by-field) is spilled raw instead: its scoring needs a lookup.
const NO_SCORE: u32 = u32::MAX;

/// What the final pass will need to score a row.
enum Head {
    /// Empty outputs (no count).
    Empty,
    /// The row's entity and slot numbers in the accumulator, and its count.
    Scored(u32, u32, f64),
    /// A count in a row not used for fitting: its entity and slot must be looked up.
    Lookup,
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
            records: Vec::new(),
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
        super::spill::dispatch_dir(&self.ctx.info)
    }

    /// Accumulates one chunk's rows. When the chunk's header is the union of all headers so far (the
    /// normal case) its rows are also recorded in `self.records` (see [`NO_SCORE`]). Returns the spill
    /// tag of the chunk: [`RAW`] when the raw body must be spilled instead.
    fn absorb(&mut self, body: &[u8], chunk: u64) -> Result<u32> {
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        for name in &reader.header.names {
            if !self.column_index.contains_key(name) {
                self.column_index.insert(name.clone(), self.columns.len());
                self.columns.push(name.clone());
            }
        }
        let header = reader.header.clone();
        if header.is_empty() {
            return Ok(RAW);
        }
        let mut compact = header.names[..] == self.columns[..];
        let bytes = reader.bytes();
        let feature = header.find(&self.args.feature);
        let entity = header.find(&self.entity);
        let time = header.find("_time");
        let by: Vec<Option<usize>> = self.args.by.iter().map(|f| header.find(f)).collect();
        let max_entities = self.ctx.env.config.max_groups;
        let records = &mut self.records;
        records.clear();
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
            let head = 'head: {
                let Some(x) = x else {
                    break 'head Head::Empty;
                };
                let Some(t) = time.and_then(|c| rec.get(c)).and_then(parse_time) else {
                    self.bad_time += 1;
                    break 'head Head::Lookup;
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
                    break 'head Head::Lookup;
                }
                let (e, s) = self.acc.push(name, &self.key, t, x);
                if self.acc.entity_count() > max_entities {
                    return Err(Error::Data(format!(
                        "The number of entities can not exceed {max_entities}. Raise max_groups in smbdensity.conf."
                    )));
                }
                Head::Scored(e, s, x)
            };
            if compact {
                match head {
                    Head::Lookup => compact = false,
                    Head::Empty => records.extend_from_slice(&NO_SCORE.to_le_bytes()),
                    Head::Scored(e, s, x) => {
                        records.extend_from_slice(&e.to_le_bytes());
                        records.extend_from_slice(&s.to_le_bytes());
                        records.extend_from_slice(&x.to_le_bytes());
                    }
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

    fn finish(&mut self, out: &mut Output) -> Result<()> {
        let acc = std::mem::take(&mut self.acc);
        let used = acc.rows;
        // What the compact records' numbers stand for.
        let numbering = (
            acc.entity_names().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            acc.slot_keys().to_vec(),
        );
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
            self.write_scored(body, &numbering, out)
        } else {
            self.write_scored(body, &numbering, out)
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

    /// Replays the spilled input and writes every row with its scores into the reply body.
    /// `numbering` is the accumulator's entity names and slot keys, in the order of their numbers.
    fn write_scored(
        &mut self,
        body: PerEntityBody,
        numbering: &(Vec<Vec<u8>>, Vec<Vec<u8>>),
        out: &mut Output,
    ) -> Result<()> {
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
        // Accumulator numbers → the model's, looked up as a row's name and by-fields would be.
        let entity_of: Vec<Option<u32>> =
            numbering.0.iter().map(|n| scorer.entity_index(n)).collect();
        let slot_of: Vec<Option<u32>> = numbering.1.iter().map(|k| scorer.slot_index(k)).collect();
        let file = temp_file(self.dispatch_dir())?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        rows::write_record(
            &mut buf,
            kept.iter()
                .map(|&i| self.columns[i].as_slice())
                .chain(out_cols.iter().map(|c| c.as_bytes())),
        );
        w.write_all(&buf)?;
        let union_index = &self.column_index;
        let columns = &self.columns;
        let spill = self.spill.take().expect("spill exists until finish");
        let mut rec = csv::ByteRecord::new();
        let mut chunk_no = 0;
        // Compact records copy as they are when their columns are all the union's and all kept.
        let all_kept = kept.len() == columns.len();
        // A record of one empty field is written `""` (as the CSV writer does).
        let lone_empty = |buf: &mut Vec<u8>, row_start: usize| {
            if !score && kept.len() == 1 && buf.len() == row_start {
                buf.extend_from_slice(b"\"\"");
            }
        };
        let mut rebuilt = Vec::new();
        spill.replay(|tag, chunk| {
            chunk_no += 1;
            buf.clear();
            let chunk = if tag != RAW && all_kept && tag as usize == columns.len() {
                let mut rest = chunk;
                while !rest.is_empty() {
                    let (hit, row) = next_record(&mut rest);
                    let row_start = buf.len();
                    buf.extend_from_slice(row);
                    lone_empty(&mut buf, row_start);
                    if score {
                        match hit {
                            Some((e, s, x)) => match slot_of[s as usize] {
                                Some(s) => {
                                    scorer.append_scored(entity_of[e as usize], s, x, &mut buf)
                                }
                                None => scorer.append_empty(&mut buf),
                            },
                            None => scorer.append_empty(&mut buf),
                        }
                    }
                    buf.push(b'\n');
                    if buf.len() >= 1 << 20 {
                        w.write_all(&buf)?;
                        buf.clear();
                    }
                }
                w.write_all(&buf)?;
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
                    let (_, row) = next_record(&mut rest);
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
            let header = reader.header.clone();
            if header.is_empty() {
                return Ok(());
            }
            let bytes = reader.bytes();
            // Where each union column sits in this chunk.
            let mut pos = vec![None; union_index.len()];
            for (i, n) in header.names.iter().enumerate() {
                pos[union_index[n]] = Some(i);
            }
            // The kept columns are exactly this chunk's columns, in order: rows can be copied as is.
            let identity = kept.len() == header.len()
                && kept.iter().enumerate().all(|(k, &u)| pos[u] == Some(k));
            let cols = scorer.columns(&header);
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
                lone_empty(&mut buf, row_start);
                if score {
                    scorer.append_cells(&header, &cols, &rec, &mut buf);
                    if kept.is_empty() {
                        buf.remove(row_start);
                    }
                }
                buf.push(b'\n');
                if buf.len() >= 1 << 20 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
            w.write_all(&buf)?;
            Ok(())
        })?;
        let mut file = w.into_inner().map_err(|e| e.into_error())?;
        file.flush()?;
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        out.body = ReplyBody::File { file, len };
        Ok(())
    }
}

/// A `_time` value: Unix seconds, usually integer text.
#[inline]
fn parse_time(v: &[u8]) -> Option<f64> {
    if !v.is_empty() && v.len() <= 15 && v.iter().all(u8::is_ascii_digit) {
        // Exact, as `str::parse` would give it.
        return Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')) as f64);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite())
}

/// Reads one compact record from the front of `rest`: its (entity, slot, count) numbers (None for a
/// row that gets empty outputs) and its row bytes.
#[inline]
fn next_record<'a>(rest: &mut &'a [u8]) -> (Option<(u32, u32, f64)>, &'a [u8]) {
    let u32_at = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    let r = *rest;
    let e = u32_at(r);
    let (hit, r) = if e == NO_SCORE {
        (None, &r[4..])
    } else {
        let s = u32_at(&r[4..]);
        let x = f64::from_le_bytes(r[8..16].try_into().expect("8 bytes"));
        (Some((e, s, x)), &r[16..])
    };
    let len = u32_at(r) as usize;
    let row = &r[4..4 + len];
    *rest = &r[4 + len..];
    (hit, row)
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

impl Command for FitEntity {
    type Error = Error;

    fn getinfo(&mut self) -> Reply {
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
