//! `apply <model> [as <name>] [threshold=...] ...`: a `stateful` command that scores every chunk's rows
//! against a saved model and answers each chunk with those rows, in order.
//!
//! A DensityFunction model scores with MLTK's columns ([`super::score`]); a per-entity count model
//! (`dist=negbin`) with its own ([`super::entity_score`]), taking `threshold=<p>` and `min_increase=<n>`.

use super::Context;
use super::entity_score::{EntityScorer, EntitySettings};
use super::fit::options_for_show;
use super::fit_entity::single_threshold;
use super::rows;
use super::score::{Scorer, Settings, options_json};
use crate::density::DistKind;
use crate::error::{Error, Result};
use crate::model::{Model, ModelBody, ModelHeader};
use crate::spl::{self, ApplyArgs};
use scpv2::body::BodyReader;
use scpv2::metadata::Reply;
use scpv2::{Command, Output, ReplyBody};

/// Rows read ahead of scoring for a large model (see `execute`).
const AHEAD: usize = 8;

pub struct Apply {
    args: ApplyArgs,
    ctx: Context,
    /// Read at getinfo (cheap: the header only) to declare the required fields.
    header: Option<ModelHeader>,
    /// A per-entity model is read whole at getinfo: its entity field is a required field.
    entity_model: Option<Model>,
    scorer: Option<Scorer>,
    entity: Option<EntityScorer>,
    warned: bool,
}

impl Apply {
    pub fn new(ctx: &Context) -> Result<Apply> {
        let args = spl::parse_apply(&ctx.info.args)?;
        let p = &args.params;
        if p.entity.is_some() {
            return Err(Error::Args(spl::ArgError(
                "Unexpected parameter: entity".into(),
            )));
        }
        // A parse-only spawn must not touch the disk; the real run reads the header for required_fields
        // and fails early, in getinfo, when the model is missing.
        let (header, entity_model) = if ctx.info.is_parse_only() {
            (None, None)
        } else {
            let store = ctx.env.store()?;
            let header = store.load_header(&args.model)?;
            if header.params.dist == DistKind::NegBin {
                let model = store.load(&args.model)?;
                (Some(model.header.clone()), Some(model))
            } else {
                (Some(header), None)
            }
        };
        let is_entity = header
            .as_ref()
            .is_some_and(|h| h.params.dist == DistKind::NegBin);
        if !is_entity && header.is_some() && p.min_increase.is_some() {
            return Err(Error::Data(
                "min_increase applies to per-entity models (entity=... dist=negbin) only".into(),
            ));
        }
        if is_entity && (p.lower_threshold.is_some() || p.show_density == Some(true)) {
            return Err(Error::Data(
                "per-entity models take threshold=<p> (or upper_threshold=<p>) and min_increase=<n>; lower_threshold and show_density do not apply".into(),
            ));
        }
        Ok(Apply {
            args,
            ctx: ctx.clone(),
            header,
            entity_model,
            scorer: None,
            entity: None,
            warned: false,
        })
    }

    /// Builds the per-entity scorer from the model read at getinfo (or now, after a parse-only getinfo).
    fn load_entity(&mut self) -> Result<bool> {
        if self.entity.is_some() {
            return Ok(true);
        }
        let model = match self.entity_model.take() {
            Some(m) => m,
            None if self.header.is_some() => return Ok(false),
            None => {
                let m = self.ctx.env.store()?.load(&self.args.model)?;
                if m.header.params.dist != DistKind::NegBin {
                    return Ok(false);
                }
                m
            }
        };
        let h = &model.header;
        let p = &self.args.params;
        let output_name = self
            .args
            .output_name
            .clone()
            .or_else(|| h.params.output_name.clone());
        let ModelBody::PerEntity(body) = model.body else {
            return Err(Error::Data(format!(
                "model \"{}\" is not a per-entity model",
                self.args.model
            )));
        };
        let threshold = single_threshold(p.threshold.as_deref().or(p.upper_threshold.as_deref()))?
            .unwrap_or(body.threshold);
        let settings = EntitySettings {
            feature: h.feature.clone(),
            by_fields: h.by_fields.clone(),
            threshold,
            min_increase: p.min_increase.unwrap_or(body.min_increase),
            output_name,
        };
        self.entity = Some(EntityScorer::new(settings, body));
        Ok(true)
    }

    /// Scores one chunk against a per-entity model.
    fn execute_entity(
        &mut self,
        body: &[u8],
        finished: bool,
        chunk: u64,
        out: &mut Output,
    ) -> Result<()> {
        let scorer = self.entity.as_mut().expect("loaded");
        let mut buf = Vec::new();
        scorer.score_chunk(body, chunk, &mut buf)?;
        if scorer.issues.chunk_all_non_numeric() {
            return Err(Error::Data(format!(
                "Feature \"{}\" is not a numeric type",
                scorer.settings.feature
            )));
        }
        if finished && !self.warned {
            self.warned = true;
            if let Some(w) = scorer.issues.warning(&scorer.settings.feature) {
                out.warn(w);
            }
            if let Some(i) = scorer.info() {
                out.info(i);
            }
        }
        out.body = ReplyBody::Bytes(buf);
        Ok(())
    }

    fn load(&mut self) -> Result<()> {
        if self.scorer.is_none() {
            let (h, body) = self.ctx.env.store()?.load_for_scoring(&self.args.model)?;
            let h = &h;
            let stored = &h.params;
            let limits = &self.ctx.env.config;
            let p = &self.args.params;
            let thresholds = if p.has_threshold() {
                p.thresholds(limits.default_prob_threshold, limits.max_threshold_num)?
            } else {
                stored.thresholds.clone()
            };
            // MLTK: any key=value at apply replaces the whole stored parameter set.
            let given = |v: Option<bool>, stored: bool| {
                if p.any_given {
                    v.unwrap_or(false)
                } else {
                    stored
                }
            };
            let show_options = if p.any_given {
                p.show_options.clone()
            } else {
                stored.show_options.clone()
            };
            let output_name = self
                .args
                .output_name
                .clone()
                .or_else(|| stored.output_name.clone());
            let options_json = show_options.as_deref().map(|keys| {
                let raw = if p.any_given {
                    p.raw.clone()
                } else {
                    Vec::new()
                };
                let model = Some(self.args.model.clone());
                options_json(
                    keys,
                    &options_for_show(
                        &h.feature,
                        &h.by_fields,
                        &raw,
                        &model,
                        &h.algorithm,
                        &output_name,
                    ),
                )
            });
            let settings = Settings {
                feature: h.feature.clone(),
                by_fields: h.by_fields.clone(),
                thresholds,
                show_density: given(p.show_density, stored.show_density),
                output_name,
                full_sample: given(p.full_sample, stored.full_sample),
                sample: given(p.sample, stored.sample),
                options_json,
                seed: p.random_state.or(stored.random_state).unwrap_or(0) as u64,
            };
            let stored_thresholds = stored.thresholds.clone();
            self.scorer = Some(Scorer::new(settings, body, &stored_thresholds));
        }
        Ok(())
    }
}

impl Command for Apply {
    type Error = Error;

    fn getinfo(&mut self) -> Reply {
        let required_fields = self.header.as_ref().map(|h| {
            let mut f = vec![h.feature.clone()];
            f.extend(h.by_fields.iter().cloned());
            if let Some(ModelBody::PerEntity(b)) = self.entity_model.as_ref().map(|m| &m.body) {
                f.push(b.entity_field.clone());
            }
            f
        });
        Reply {
            kind: Some("stateful"),
            required_fields,
            ..Default::default()
        }
    }

    fn execute(&mut self, body: &[u8], finished: bool, chunk: u64, out: &mut Output) -> Result<()> {
        if self.load_entity()? {
            return self.execute_entity(body, finished, chunk, out);
        }
        self.load()?;
        let scorer = self.scorer.as_mut().expect("loaded");
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        let mut buf = Vec::with_capacity(body.len() + body.len() / 2 + 64);
        if !reader.header.is_empty() {
            let out_cols = scorer.settings.output_columns();
            let header = reader.header.clone();
            let kept = rows::kept_columns(&header.names, &out_cols);
            let cols = scorer.columns(&header);
            let bytes = reader.bytes();
            let all_kept = kept.len() == header.len();
            rows::write_record(
                &mut buf,
                kept.iter()
                    .map(|&i| header.names[i].as_slice())
                    .chain(out_cols.iter().map(|c| c.as_bytes())),
            );
            scorer.issues.start_chunk();
            // With a large model, rows are read a few ahead of scoring: each row's index slots are
            // prefetched when it is read and its record halfway, so the memory waits overlap.
            let ahead = if scorer.wants_prefetch() { AHEAD } else { 1 };
            let mut ring = vec![(csv::ByteRecord::new(), Vec::new(), 0u64); ahead];
            let (mut head, mut queued, mut more) = (0, 0, true);
            loop {
                while more && queued < ahead {
                    let (rec, key, hash) = &mut ring[(head + queued) % ahead];
                    more = reader
                        .read(rec)
                        .map_err(|source| Error::Body { chunk, source })?;
                    if more && ahead > 1 {
                        *hash = scorer.prefetch_slot(&cols, rec, key);
                        queued += 1;
                        if queued > ahead / 2 {
                            scorer.prefetch_record(ring[(head + queued - 1 - ahead / 2) % ahead].2);
                        }
                    } else if more {
                        queued += 1;
                    }
                }
                if queued == 0 {
                    break;
                }
                let (rec, key, hash) = &ring[head];
                head = (head + 1) % ahead;
                queued -= 1;
                let row_start = buf.len();
                rows::write_input(&mut buf, bytes, rec, (!all_kept).then_some(&kept[..]));
                if ahead > 1 {
                    scorer.append_cells_keyed(&header, &cols, rec, key, *hash, &mut buf);
                } else {
                    scorer.append_cells(&header, &cols, rec, &mut buf);
                }
                if kept.is_empty() {
                    // No input column precedes the outputs: drop the first cell's comma.
                    buf.remove(row_start);
                }
                buf.push(b'\n');
            }
            if scorer.issues.chunk_all_non_numeric() {
                return Err(Error::Data(format!(
                    "Feature \"{}\" is not a numeric type",
                    scorer.settings.feature
                )));
            }
        }
        if finished && !self.warned {
            self.warned = true;
            if let Some(w) = scorer.issues.warning(&scorer.settings.feature) {
                out.warn(w);
            }
        }
        out.body = ReplyBody::Bytes(buf);
        Ok(())
    }
}
