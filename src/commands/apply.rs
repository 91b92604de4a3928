//! `apply <model> [as <name>] [threshold=...] ...`: a `stateful` command that scores every chunk's rows
//! against a saved model and answers each chunk with those rows, in order.
//!
//! A DensityFunction model scores with MLTK's columns ([`super::score`]); a per-entity count model
//! (`dist=negbin`) with its own ([`super::entity_score`]), taking `threshold=<p>` and `min_increase=<n>`.

use super::entity_score::{EntityColumns, EntityScorer, EntitySettings};
use super::fit_entity::single_threshold;
use super::score::{Columns, RowIssues, Scorer, Settings};
use super::{Context, Output, ReplyBody, SearchCommand};
use crate::density::DistKind;
use crate::error::{Error, Result};
use crate::model::{Model, ModelBody, ModelHeader};
use crate::protocol::body::{BodyReader, Header, body_writer};
use crate::protocol::metadata::Reply;
use crate::spl::{self, ApplyArgs};

/// The scorer of either model kind (one per command, so its size does not matter).
#[allow(clippy::large_enum_variant)]
enum AnyScorer {
    Density(Scorer),
    Entity(EntityScorer),
}

enum AnyColumns {
    Density(Columns),
    Entity(EntityColumns),
}

impl AnyScorer {
    fn output_columns(&self) -> Vec<String> {
        match self {
            AnyScorer::Density(s) => s.settings.output_columns(),
            AnyScorer::Entity(s) => s.settings.output_columns(),
        }
    }

    fn columns(&self, header: &Header) -> AnyColumns {
        match self {
            AnyScorer::Density(s) => AnyColumns::Density(s.columns(header)),
            AnyScorer::Entity(s) => AnyColumns::Entity(s.columns(header)),
        }
    }

    fn score_row(
        &mut self,
        header: &Header,
        cols: &AnyColumns,
        rec: &csv::ByteRecord,
        out: &mut csv::ByteRecord,
    ) {
        match (self, cols) {
            (AnyScorer::Density(s), AnyColumns::Density(c)) => s.score_row(header, c, rec, out),
            (AnyScorer::Entity(s), AnyColumns::Entity(c)) => s.score_row(header, c, rec, out),
            _ => unreachable!("columns come from the same scorer"),
        }
    }

    fn issues(&mut self) -> &mut RowIssues {
        match self {
            AnyScorer::Density(s) => &mut s.issues,
            AnyScorer::Entity(s) => &mut s.issues,
        }
    }

    fn feature(&self) -> &str {
        match self {
            AnyScorer::Density(s) => &s.settings.feature,
            AnyScorer::Entity(s) => &s.settings.feature,
        }
    }
}

pub struct Apply {
    args: ApplyArgs,
    ctx: Context,
    /// Read at getinfo (cheap: the header only) to declare the required fields.
    header: Option<ModelHeader>,
    /// A per-entity model is read whole at getinfo: its entity field is a required field.
    model: Option<Model>,
    scorer: Option<AnyScorer>,
    warned: bool,
}

impl Apply {
    pub fn new(ctx: &Context) -> Result<Apply> {
        let args = spl::parse_apply(&ctx.info.args)?;
        let p = &args.params;
        if p.sample == Some(true) || p.full_sample == Some(true) || p.show_options.is_some() {
            return Err(Error::Data(
                "sample, full_sample and show_options are not supported yet by this version of smbdensity".into(),
            ));
        }
        if p.entity.is_some() {
            return Err(Error::Args(spl::ArgError(
                "Unexpected parameter: entity".into(),
            )));
        }
        // A parse-only spawn must not touch the disk; the real run reads the header for required_fields
        // and fails early, in getinfo, when the model is missing.
        let (header, model) = if ctx.info.is_parse_only() {
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
        if !is_entity && p.min_increase.is_some() {
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
            model,
            scorer: None,
            warned: false,
        })
    }

    fn load(&mut self) -> Result<()> {
        if self.scorer.is_some() {
            return Ok(());
        }
        let model = match self.model.take() {
            Some(m) => m,
            None => self.ctx.env.store()?.load(&self.args.model)?,
        };
        let h = &model.header;
        let stored = &h.params;
        let p = &self.args.params;
        let output_name = self
            .args
            .output_name
            .clone()
            .or_else(|| stored.output_name.clone());
        let scorer = match model.body {
            ModelBody::PerEntity(body) => {
                let threshold =
                    single_threshold(p.threshold.as_deref().or(p.upper_threshold.as_deref()))?
                        .unwrap_or(body.threshold);
                let settings = EntitySettings {
                    feature: h.feature.clone(),
                    by_fields: h.by_fields.clone(),
                    threshold,
                    min_increase: p.min_increase.unwrap_or(body.min_increase),
                    output_name,
                };
                AnyScorer::Entity(EntityScorer::new(settings, body))
            }
            ModelBody::Density(body) => {
                let limits = &self.ctx.env.config;
                let thresholds = if p.has_threshold() {
                    p.thresholds(limits.default_prob_threshold, limits.max_threshold_num)?
                } else {
                    stored.thresholds.clone()
                };
                // MLTK: any key=value at apply replaces the whole stored parameter set.
                let show_density = if p.any_given {
                    p.show_density.unwrap_or(false)
                } else {
                    stored.show_density
                };
                let settings = Settings {
                    feature: h.feature.clone(),
                    by_fields: h.by_fields.clone(),
                    thresholds,
                    show_density,
                    output_name,
                };
                AnyScorer::Density(Scorer::new(settings, body, &stored.thresholds))
            }
        };
        self.scorer = Some(scorer);
        Ok(())
    }
}

impl SearchCommand for Apply {
    fn getinfo(&self) -> Reply {
        let required_fields = self.header.as_ref().map(|h| {
            let mut f = vec![h.feature.clone()];
            f.extend(h.by_fields.iter().cloned());
            if let Some(ModelBody::PerEntity(b)) = self.model.as_ref().map(|m| &m.body) {
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
        self.load()?;
        let scorer = self.scorer.as_mut().expect("loaded");
        let mut reader = BodyReader::new(body).map_err(|source| Error::Body { chunk, source })?;
        let mut buf = Vec::with_capacity(body.len() + body.len() / 2 + 64);
        if !reader.header.is_empty() {
            let out_cols = scorer.output_columns();
            let header = reader.header.clone();
            let replaced = |name: &[u8]| {
                let base = name.strip_prefix(b"__mv_").unwrap_or(name);
                out_cols
                    .iter()
                    .any(|c| c.as_bytes() == name || c.as_bytes() == base)
            };
            let kept: Vec<usize> = (0..header.len())
                .filter(|&i| !replaced(&header.names[i]))
                .collect();
            let cols = scorer.columns(&header);
            let mut w = body_writer(&mut buf);
            let mut out_rec = csv::ByteRecord::new();
            for &i in &kept {
                out_rec.push_field(&header.names[i]);
            }
            for c in &out_cols {
                out_rec.push_field(c.as_bytes());
            }
            w.write_byte_record(&out_rec).map_err(csv_io)?;
            scorer.issues().start_chunk();
            let mut rec = csv::ByteRecord::new();
            while reader
                .read(&mut rec)
                .map_err(|source| Error::Body { chunk, source })?
            {
                out_rec.clear();
                for &i in &kept {
                    out_rec.push_field(rec.get(i).unwrap_or(b""));
                }
                scorer.score_row(&header, &cols, &rec, &mut out_rec);
                w.write_byte_record(&out_rec).map_err(csv_io)?;
            }
            w.flush()?;
            if scorer.issues().chunk_all_non_numeric() {
                return Err(Error::Data(format!(
                    "Feature \"{}\" is not a numeric type",
                    scorer.feature()
                )));
            }
        }
        if finished && !self.warned {
            self.warned = true;
            let feature = scorer.feature().to_string();
            if let Some(w) = scorer.issues().warning(&feature) {
                out.warn(w);
            }
            if let AnyScorer::Entity(s) = scorer {
                if let Some(i) = s.info() {
                    out.info(i);
                }
            }
        }
        out.body = ReplyBody::Bytes(buf);
        Ok(())
    }
}

fn csv_io(e: csv::Error) -> Error {
    Error::Io(std::io::Error::other(e.to_string()))
}
