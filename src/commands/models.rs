//! The model-management commands `| summary <model>`, `| listmodels` and `| deletemodel <model>`:
//! generating commands (they need no input) that answer their first execute chunk with a table.

use super::Context;
use crate::density::pyfmt;
use crate::error::{Error, Result};
use crate::model::store::{ModelStore, StoreError};
use crate::model::{ModelBody, decode_key};
use crate::spl::{self, ModelName};
use scpv2::body::body_writer;
use scpv2::metadata::Reply;
use scpv2::{Command, Output, ReplyBody};

/// Which table a generating command produces.
enum Kind {
    Summary(ModelName),
    List,
    Delete(ModelName),
}

pub struct ModelCommand {
    kind: Kind,
    ctx: Context,
    done: bool,
}

impl ModelCommand {
    pub fn summary(ctx: &Context) -> Result<ModelCommand> {
        let name = spl::parse_model_only("summary", &ctx.info.args)?;
        Ok(ModelCommand {
            kind: Kind::Summary(name),
            ctx: ctx.clone(),
            done: false,
        })
    }

    pub fn list(ctx: &Context) -> Result<ModelCommand> {
        if let Some(a) = ctx.info.args.first() {
            return Err(Error::Args(spl::ArgError(format!(
                "listmodels takes no arguments, got \"{a}\""
            ))));
        }
        Ok(ModelCommand {
            kind: Kind::List,
            ctx: ctx.clone(),
            done: false,
        })
    }

    pub fn delete(ctx: &Context) -> Result<ModelCommand> {
        let name = spl::parse_model_only("deletemodel", &ctx.info.args)?;
        Ok(ModelCommand {
            kind: Kind::Delete(name),
            ctx: ctx.clone(),
            done: false,
        })
    }

    fn store(&self) -> Result<ModelStore> {
        Ok(self.ctx.env.store()?)
    }
}

/// Writes a table as a CSV reply body.
fn table(header: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut w = body_writer(Vec::new());
    let io = |e: csv::Error| Error::Io(std::io::Error::other(e.to_string()));
    w.write_record(header).map_err(io)?;
    for r in rows {
        w.write_record(r).map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))
}

fn number(v: f64, integral: bool) -> String {
    if integral && v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i64)
    } else {
        pyfmt::repr(v)
    }
}

impl ModelCommand {
    fn summary_table(&self, name: &ModelName) -> Result<Vec<u8>> {
        let model = self.store()?.load(name)?;
        let h = &model.header;
        let mut header: Vec<String> = h.by_fields.clone();
        header.extend(
            [
                "type",
                "min",
                "max",
                "mean",
                "std",
                "cardinality",
                "distance",
                "other",
            ]
            .map(String::from),
        );
        let metric = h.params.metric.param();
        let auto = h.params.dist == crate::density::DistKind::Auto;
        let body = match &model.body {
            ModelBody::Density(b) => b,
            ModelBody::PerEntity(b) => return entity_summary(h, b),
        };
        let mut rows = Vec::with_capacity(body.groups.len());
        for g in &body.groups {
            let mut row: Vec<String> = decode_key(&g.key)
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            let (mean, std) = g.dist.summary_mean_std();
            let type_name = g.dist.type_name();
            row.push(if auto {
                format!("Auto: {type_name}")
            } else {
                type_name.to_string()
            });
            let (min, max) = g.dist.summary_min_max(&g.stats);
            row.push(number(min, body.integral_feature));
            row.push(number(max, body.integral_feature));
            row.push(pyfmt::repr(mean));
            row.push(pyfmt::repr(std));
            row.push(g.stats.count.to_string());
            row.push(if g.distance.is_finite() {
                format!("metric: {metric}, distance: {}", pyfmt::repr(g.distance))
            } else {
                format!("metric: {metric}, distance: N/A")
            });
            row.push(g.dist.summary_other());
            rows.push(row);
        }
        table(&header, &rows)
    }

    fn list_table(&self, out: &mut Output) -> Result<Vec<u8>> {
        let store = self.store()?;
        let header: Vec<String> = [
            "name", "type", "options", "app", "owner", "size", "modified",
        ]
        .map(String::from)
        .to_vec();
        let mut rows = Vec::new();
        for m in store.list()? {
            let modified = m
                .modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs().to_string())
                .unwrap_or_default();
            match &m.header {
                Ok(h) => {
                    let options = serde_json::json!({
                        "algo_name": h.algorithm,
                        "model_name": m.name,
                        "feature_variables": [h.feature],
                        "split_by": h.by_fields,
                        "args": h.args,
                        "dist": h.params.dist.param(),
                    });
                    rows.push(vec![
                        m.name.clone(),
                        h.kind().to_string(),
                        options.to_string(),
                        h.app.clone(),
                        h.owner.clone(),
                        m.size.to_string(),
                        modified,
                    ]);
                }
                Err(e) => {
                    out.warn(format!(
                        "listmodels: Failed to load model \"{}\": {e}",
                        m.name
                    ));
                    rows.push(vec![
                        m.name.clone(),
                        "Unknown".to_string(),
                        String::new(),
                        String::new(),
                        String::new(),
                        m.size.to_string(),
                        modified,
                    ]);
                }
            }
        }
        table(&header, &rows)
    }
}

impl Command for ModelCommand {
    type Error = Error;

    fn getinfo(&mut self) -> Reply {
        Reply {
            kind: Some("reporting"),
            generating: Some(true),
            ..Default::default()
        }
    }

    fn execute(
        &mut self,
        _body: &[u8],
        _finished: bool,
        _chunk: u64,
        out: &mut Output,
    ) -> Result<()> {
        out.finished = Some(true);
        if std::mem::replace(&mut self.done, true) || self.ctx.preview {
            return Ok(());
        }
        let body = match &self.kind {
            Kind::Summary(name) => self.summary_table(name)?,
            Kind::List => self.list_table(out)?,
            Kind::Delete(name) => {
                match self.store()?.delete(name) {
                    Ok(_) => out.info(format!("Deleted model \"{}\"", name.name)),
                    Err(StoreError::NotFound { .. }) => {
                        return Err(Error::Data(format!(
                            "model \"{}\" does not exist.",
                            name.name
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
                Vec::new()
            }
        };
        out.body = ReplyBody::Bytes(body);
        Ok(())
    }
}

/// `summary` of a per-entity model: one row per entity with its count-model parameters.
fn entity_summary(
    h: &crate::model::ModelHeader,
    b: &crate::hostmodel::PerEntityBody,
) -> Result<Vec<u8>> {
    let header: Vec<String> = [
        b.entity_field.as_str(),
        "type",
        "level",
        "dispersion",
        "hours",
        "active_hours",
        "peak_expected",
        "peak_slot",
        "refinements",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = b
        .entity_rows(&h.by_fields)
        .into_iter()
        .map(|r| {
            let refinements: Vec<String> = r
                .refinements
                .iter()
                .filter(|(_, _, f)| (*f - 1.0).abs() > 1e-9)
                .map(|(field, value, f)| format!("{field}={value}:{}", pyfmt::repr(*f)))
                .collect();
            vec![
                r.entity,
                crate::hostmodel::KIND.to_string(),
                pyfmt::repr(r.level),
                pyfmt::repr(r.phi),
                r.hours.to_string(),
                r.active_hours.to_string(),
                pyfmt::repr(r.peak_expected),
                r.peak_slot,
                refinements.join(" "),
            ]
        })
        .collect();
    table(&header, &rows)
}
