//! SPL argument parsing for `fit`, `apply`, `summary` and `deletemodel`, with MLTK's syntax, typing rules
//! and error texts (`param_util.parse_args`/`convert_params`).
//!
//! splunkd hands us `searchinfo.args`: the tokens after the command name with quotes already removed,
//! so `by "HourOfDay,DayOfWeek"` arrives as `["by", "HourOfDay,DayOfWeek"]`. [`tokenize`] does the same
//! for the local driver.

use std::fmt;

use crate::density::{DistKind, Threshold};

/// An argument error, shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ArgError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(msg.into()))
}

/// Splits a command line the way Splunk's tokenizer does for `searchinfo.args`: whitespace separates
/// tokens, double or single quotes group (and are removed), and a comma outside quotes separates field
/// names (Splunk strips it).
pub fn tokenize(line: &str) -> Result<Vec<String>, ArgError> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut in_token = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_token = true;
                let mut closed = false;
                while let Some(q) = chars.next() {
                    if q == '\\' && matches!(chars.peek(), Some(n) if *n == c || *n == '\\') {
                        cur.push(chars.next().expect("peeked"));
                    } else if q == c {
                        closed = true;
                        break;
                    } else {
                        cur.push(q);
                    }
                }
                if !closed {
                    return err(format!("Unbalanced quotes in: {line}"));
                }
            }
            ',' => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c if c.is_whitespace() => {
                if in_token {
                    tokens.push(std::mem::take(&mut cur));
                    in_token = false;
                }
            }
            c => {
                in_token = true;
                cur.push(c);
            }
        }
    }
    if in_token {
        tokens.push(cur);
    }
    Ok(tokens)
}

/// A model reference: `[app:|user:]name`. Both namespaces resolve to this app's `lookups/` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    pub name: String,
    pub namespace: Namespace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    User,
    App,
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The longest model name accepted; file systems cap names at 255 bytes.
pub const MAX_MODEL_NAME_LEN: usize = 200;

impl ModelName {
    /// Parses `[app:|user:]name`, enforcing `^[a-zA-Z_][a-zA-Z0-9_]*$` before any path is built.
    pub fn parse(s: &str) -> Result<ModelName, ArgError> {
        let (namespace, name) = match s.split_once(':') {
            None => (Namespace::User, s),
            Some((ns, name)) => {
                if name.contains(':') {
                    return err(format!("Invalid model name \"{s}\""));
                }
                match ns.to_ascii_lowercase().as_str() {
                    "user" => (Namespace::User, name),
                    "app" => (Namespace::App, name),
                    _ => return err("You may only specify namespace \"app\", \"user\" ."),
                }
            }
        };
        if !is_valid_model_name(name) {
            return err(format!("Invalid model name \"{name}\""));
        }
        Ok(ModelName {
            name: name.to_string(),
            namespace,
        })
    }
}

/// MLTK's model-name rule, plus a length cap so a name always fits in a file name.
pub fn is_valid_model_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_MODEL_NAME_LEN
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub use crate::density::Metric;

/// The thresholds of one fit or apply, as MLTK's `OutlierThreshold` holds them. Each entry produces
/// its own output columns; `labels` holds the `_th=<t>` column suffix when there are several.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ThresholdSet {
    pub items: Vec<Threshold>,
    /// Python `str(t)` of each threshold when there are several (MLTK's `_th=` names), else empty.
    pub labels: Vec<String>,
}

impl ThresholdSet {
    pub fn single(t: Threshold) -> ThresholdSet {
        ThresholdSet {
            items: vec![t],
            labels: Vec::new(),
        }
    }

    pub fn is_multiple(&self) -> bool {
        !self.labels.is_empty()
    }
}

/// The DensityFunction parameters (`key=value`) of a `fit` or `apply`, typed and validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DensityParams {
    pub dist: Option<DistKind>,
    pub exclude_dist: Vec<DistKind>,
    pub metric: Option<Metric>,
    /// Given thresholds, not yet defaulted: `(threshold, lower_threshold, upper_threshold)`.
    pub threshold: Option<Vec<f64>>,
    pub lower_threshold: Option<Vec<f64>>,
    pub upper_threshold: Option<Vec<f64>>,
    pub show_density: Option<bool>,
    pub sample: Option<bool>,
    pub full_sample: Option<bool>,
    pub show_options: Option<String>,
    pub random_state: Option<i64>,
    /// Per-entity model options (`entity=`, `min_increase=`).
    pub entity: Option<String>,
    pub min_increase: Option<f64>,
    /// True when any `key=value` was given (MLTK then replaces the stored parameter set at apply).
    pub any_given: bool,
    /// The `key=value` pairs as typed (for `show_options`).
    pub raw: Vec<(String, String)>,
}

impl DensityParams {
    /// True when a threshold option was given.
    pub fn has_threshold(&self) -> bool {
        self.threshold.is_some() || self.lower_threshold.is_some() || self.upper_threshold.is_some()
    }

    /// Resolves the thresholds with MLTK's validation. `default` is `default_prob_threshold`.
    pub fn thresholds(
        &self,
        default: f64,
        max_threshold_num: usize,
    ) -> Result<ThresholdSet, ArgError> {
        resolve_thresholds(
            self.threshold.as_deref(),
            self.lower_threshold.as_deref(),
            self.upper_threshold.as_deref(),
            default,
            max_threshold_num,
        )
    }
}

/// MLTK's `OutlierThreshold` validation and resolution.
pub fn resolve_thresholds(
    threshold: Option<&[f64]>,
    lower: Option<&[f64]>,
    upper: Option<&[f64]>,
    default: f64,
    max_threshold_num: usize,
) -> Result<ThresholdSet, ArgError> {
    if threshold.is_some() && (lower.is_some() || upper.is_some()) {
        return err(
            "Thresholds are ambiguous: \"threshold\", and \"lower_threshold\"/\"upper_threshold\" can not be specified together.",
        );
    }
    for (name, list) in [
        ("threshold", threshold),
        ("lower_threshold", lower),
        ("upper_threshold", upper),
    ] {
        for t in list.unwrap_or(&[]) {
            if !(1e-9..=1.0).contains(t) {
                return err(format!(
                    "Parameter \"{name}\" must be between 0.000000001 and 1"
                ));
            }
        }
    }
    if let (Some(l), Some(u)) = (lower, upper) {
        if l.len() > 1 || u.len() > 1 {
            return err(
                "With multiple thresholds, only one of \"lower_threshold\", \"upper_threshold\", or \"threshold\" can be specified.",
            );
        }
        if l[0] + u[0] > 1.0 {
            return err(
                "The sum of \"lower_threshold\" and \"upper_threshold\" can not be larger than 1",
            );
        }
    }
    let (values, make): (Vec<f64>, fn(f64) -> Threshold) = match (threshold, lower, upper) {
        (_, Some(l), Some(u)) => {
            return Ok(ThresholdSet::single(Threshold::LowerUpper(l[0], u[0])));
        }
        (_, Some(l), None) => (l.to_vec(), Threshold::Lower),
        (_, None, Some(u)) => (u.to_vec(), Threshold::Upper),
        (Some(t), None, None) => (t.to_vec(), Threshold::Total),
        (None, None, None) => (vec![default], Threshold::Total),
    };
    if values.len() > 1 && values.len() > max_threshold_num {
        return err(format!(
            "The maximum number of allowed thresholds are {max_threshold_num}. Found {} thresholds.",
            values.len()
        ));
    }
    let labels = if values.len() > 1 {
        values
            .iter()
            .map(|t| crate::density::pyfmt::repr(*t))
            .collect()
    } else {
        Vec::new()
    };
    Ok(ThresholdSet {
        items: values.into_iter().map(make).collect(),
        labels,
    })
}

/// The processor-level options of `fit` (stripped before the algorithm sees its parameters).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FitOptions {
    pub partial_fit: bool,
    /// `apply=false`: save the model and pass the rows through unscored.
    pub apply: bool,
}

/// A parsed `fit smbdensity|DensityFunction <field> [by "<f,...>"] [into <model>] [as <name>] [k=v ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FitArgs {
    /// The algorithm name as typed (`smbdensity` or `DensityFunction`).
    pub algorithm: String,
    pub feature: String,
    pub by: Vec<String>,
    pub into: Option<ModelName>,
    pub output_name: Option<String>,
    pub params: DensityParams,
    pub options: FitOptions,
}

/// A parsed `apply <model> [as <name>] [k=v ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyArgs {
    pub model: ModelName,
    pub output_name: Option<String>,
    pub params: DensityParams,
}

/// The words and `key=value` pairs of a command line, split as MLTK's `parse_args` does.
#[derive(Debug, Default)]
struct Parsed {
    words: Vec<String>,
    by: Option<String>,
    into: Option<String>,
    as_name: Option<String>,
    from: bool,
    params: Vec<(String, String)>,
}

fn is_param_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn parse_tokens(args: &[String]) -> Result<Parsed, ArgError> {
    // MLTK's preprocess_argv: rejoin `key = value` and `key= value` that were split around `=`.
    let mut joined: Vec<String> = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if i + 2 < args.len() && args[i + 1] == "=" && is_param_key(a) {
            joined.push(format!(
                "{a}={}",
                args.get(i + 2).cloned().unwrap_or_default()
            ));
            i += 3;
        } else if a.ends_with('=') && is_param_key(&a[..a.len() - 1]) && i + 1 < args.len() {
            joined.push(format!("{a}{}", args[i + 1]));
            i += 2;
        } else {
            joined.push(a.clone());
            i += 1;
        }
    }
    let mut p = Parsed::default();
    let mut it = joined.into_iter();
    while let Some(tok) = it.next() {
        let lower = tok.to_ascii_lowercase();
        let keyword = match lower.as_str() {
            "by" | "into" | "as" => Some(lower.clone()),
            "from" | "~" => Some("from".to_string()),
            _ => None,
        };
        if let Some(kw) = keyword {
            let slot = match kw.as_str() {
                "by" => &mut p.by,
                "into" => &mut p.into,
                "as" => &mut p.as_name,
                _ => {
                    if p.from {
                        return err("Syntax error: you may specify \"from\" only once");
                    }
                    p.from = true;
                    continue;
                }
            };
            if slot.is_some() {
                return err(format!("Syntax error: you may specify \"{kw}\" only once"));
            }
            match it.next() {
                Some(v) => *slot = Some(unquote(&v).to_string()),
                None => {
                    return err(format!(
                        "Syntax error: \"{kw}\" must be followed by a value"
                    ));
                }
            }
            continue;
        }
        if let Some((k, v)) = tok.split_once('=') {
            let k = k.trim_end();
            if is_param_key(k) {
                if p.params.iter().any(|(pk, _)| pk == k) {
                    return err(format!(
                        "Syntax error: parameter \"{k}\" given more than once"
                    ));
                }
                p.params.push((k.to_string(), v.trim_start().to_string()));
                continue;
            }
        }
        p.words.push(unquote(&tok).to_string());
    }
    Ok(p)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ArgError> {
    match unquote(v).to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" | "enable" | "enabled" => Ok(true),
        "0" | "f" | "false" | "n" | "no" | "disable" | "disabled" => Ok(false),
        _ => err(format!("Invalid value for {key}: must be a boolean")),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    // Python's float() accepts surrounding whitespace, `inf`, `nan`; we accept what Rust parses.
    s.trim().parse::<f64>().ok()
}

fn parse_multiple_floats(key: &str, v: &str) -> Result<Vec<f64>, ArgError> {
    if let Some(x) = parse_float(v) {
        return Ok(vec![x]);
    }
    let parts: Option<Vec<f64>> = unquote(v).split(',').map(parse_float).collect();
    match parts {
        Some(p) if !p.is_empty() => Ok(p),
        _ => err(format!(
            "Invalid value for {key}: must have one or multiple float values e.g. {key}=\"0.01,0.02,0.03\"."
        )),
    }
}

fn parse_int(key: &str, v: &str) -> Result<i64, ArgError> {
    unquote(v)
        .trim()
        .parse::<i64>()
        .map_err(|_| ArgError(format!("Invalid value for {key}: must be an int")))
}

/// Types and validates DensityFunction parameters. `for_fit` admits the fit-only options.
fn parse_params(
    raw: &[(String, String)],
    for_fit: bool,
) -> Result<(DensityParams, FitOptions), ArgError> {
    let mut p = DensityParams {
        any_given: !raw.is_empty(),
        raw: raw.to_vec(),
        ..Default::default()
    };
    let mut o = FitOptions {
        partial_fit: false,
        apply: true,
    };
    let mut exclude: Option<String> = None;
    for (k, v) in raw {
        let v = v.as_str();
        match k.as_str() {
            "dist" => {
                let d = unquote(v);
                p.dist = Some(DistKind::from_param(d).ok_or_else(|| {
                    ArgError(format!(
                        "Invalid value error: dist must be one of \"auto\", \"norm\", \"expon\", \"gaussian_kde\", \"beta\", but found dist=\"{d}\"."
                    ))
                })?);
            }
            "exclude_dist" => exclude = Some(unquote(v).to_string()),
            "metric" => {
                p.metric = Some(match unquote(v) {
                    "wasserstein" => Metric::Wasserstein,
                    "kolmogorov_smirnov" => Metric::KolmogorovSmirnov,
                    m => {
                        return err(format!(
                            "Invalid value error: metric must be one of \"kolmogorov_smirnov\", \"wasserstein\", but found metric=\"{m}\"."
                        ));
                    }
                })
            }
            "threshold" => p.threshold = Some(parse_multiple_floats(k, v)?),
            "lower_threshold" => p.lower_threshold = Some(parse_multiple_floats(k, v)?),
            "upper_threshold" => p.upper_threshold = Some(parse_multiple_floats(k, v)?),
            "show_density" => p.show_density = Some(parse_bool(k, v)?),
            "sample" => p.sample = Some(parse_bool(k, v)?),
            "full_sample" => p.full_sample = Some(parse_bool(k, v)?),
            "show_options" => p.show_options = Some(unquote(v).to_string()),
            "random_state" => p.random_state = Some(parse_int(k, v)?),
            "entity" if for_fit => p.entity = Some(unquote(v).to_string()),
            "min_increase" => {
                p.min_increase = Some(
                    parse_float(unquote(v))
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| {
                            ArgError(format!(
                                "Invalid value for {k}: must be a non-negative number"
                            ))
                        })?,
                )
            }
            "partial_fit" if for_fit => o.partial_fit = parse_bool(k, v)?,
            "apply" if for_fit => o.apply = parse_bool(k, v)?,
            "kfold_cv" if for_fit => {
                return err(
                    "Algorithm \"DensityFunction\" does not support the kfold_cv parameter",
                );
            }
            _ => return err(format!("Unexpected parameter: {k}")),
        }
    }
    if let Some(ex) = exclude {
        if p.dist.unwrap_or(DistKind::Auto) != DistKind::Auto {
            return err(
                "The exclude_dist parameter can only be used when dist=auto. Update your SPL search parameters and run the search again.",
            );
        }
        for item in ex.split(',') {
            let item = item.trim();
            match DistKind::from_param(item) {
                Some(d) if d != DistKind::Auto => {
                    if !p.exclude_dist.contains(&d) {
                        p.exclude_dist.push(d)
                    }
                }
                _ => {
                    return err(format!(
                        "Invalid value error: exclude_dist must be one or more of \"norm\", \"expon\", \"gaussian_kde\", \"beta\", but found \"{item}\" in exclude_dist."
                    ));
                }
            }
        }
        if p.exclude_dist.len() == 4 {
            return err(
                "You cannot exclude all of the distribution types when using the exclude_dist parameter. Update your SPL search parameters to include at least one distribution type and run the search again.",
            );
        }
    }
    Ok((p, o))
}

const MULTI_VALUE_SYNTAX: &str = "Syntax error: If multiple values of by field or any parameter are used with comma (\",\") they should be given in quotation marks e.g. by \"DayOfWeek,HourOfDay\" or threshold=\"0.01,0.02\".";

/// The names `fit` accepts for the algorithm.
pub fn is_algorithm_name(s: &str) -> bool {
    s.eq_ignore_ascii_case("smbdensity") || s == "DensityFunction"
}

/// Parses the arguments of `fit`.
pub fn parse_fit(args: &[String]) -> Result<FitArgs, ArgError> {
    let p = parse_tokens(args)?;
    let mut words = p.words.into_iter();
    let algorithm = match words.next() {
        Some(a) => a,
        None => {
            return err(
                "Usage: fit smbdensity <field> [by \"<field>,...\"] [into <model>] [threshold=<p>] ...",
            );
        }
    };
    if !is_algorithm_name(&algorithm) {
        return err(format!(
            "Unsupported algorithm \"{algorithm}\": this app's fit supports smbdensity (alias DensityFunction)"
        ));
    }
    let features: Vec<String> = words.collect();
    if features.len() != 1 || p.from {
        return err(MULTI_VALUE_SYNTAX);
    }
    let by = match p.by {
        None => Vec::new(),
        Some(b) => {
            // MLTK splits without trimming; we trim (a documented fix), and refuse empty names.
            let fields: Vec<String> = b
                .trim_matches(',')
                .split(',')
                .map(|f| f.trim().to_string())
                .collect();
            if fields.iter().any(|f| f.is_empty()) {
                return err(format!(
                    "Syntax error: empty field name in by clause \"{b}\""
                ));
            }
            fields
        }
    };
    let into = p.into.as_deref().map(ModelName::parse).transpose()?;
    let (params, options) = parse_params(&p.params, true)?;
    if !options.apply && into.is_none() {
        return err("apply=false requires a model name: add \"into <model>\"");
    }
    Ok(FitArgs {
        algorithm,
        feature: features.into_iter().next().expect("one feature"),
        by,
        into,
        output_name: p.as_name,
        params,
        options,
    })
}

/// Parses the arguments of `apply`.
pub fn parse_apply(args: &[String]) -> Result<ApplyArgs, ArgError> {
    let p = parse_tokens(args)?;
    if p.by.is_some() || p.into.is_some() || p.from {
        return err(
            "Syntax error: apply takes a model name, an optional \"as <name>\" and parameters",
        );
    }
    let mut words = p.words.into_iter();
    let model = match (words.next(), words.next()) {
        (Some(m), None) => ModelName::parse(&m)?,
        (None, _) => return err("Usage: apply <model> [threshold=<p>] [show_density=<bool>] ..."),
        (Some(_), Some(extra)) => {
            return err(format!("Syntax error: unexpected argument \"{extra}\""));
        }
    };
    let (params, _) = parse_params(&p.params, false)?;
    Ok(ApplyArgs {
        model,
        output_name: p.as_name,
        params,
    })
}

/// Parses the single model argument of `summary` and `deletemodel`.
pub fn parse_model_only(command: &str, args: &[String]) -> Result<ModelName, ArgError> {
    match args {
        [one] if !one.contains('=') => ModelName::parse(unquote(one)),
        _ => err(format!("Usage: {command} <modelname>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s).unwrap()
    }

    #[test]
    fn tokenizer_strips_quotes_and_unquoted_commas() {
        assert_eq!(
            toks(r#"smbdensity count by "HourOfDay,DayOfWeek" into m"#),
            [
                "smbdensity",
                "count",
                "by",
                "HourOfDay,DayOfWeek",
                "into",
                "m"
            ]
        );
        assert_eq!(
            toks("count by HourOfDay,DayOfWeek"),
            ["count", "by", "HourOfDay", "DayOfWeek"]
        );
        assert_eq!(
            toks(r#"m threshold="0.01,0.05""#),
            ["m", "threshold=0.01,0.05"]
        );
        assert!(tokenize("m \"open").is_err());
    }

    #[test]
    fn fit_esco_baseline() {
        let f = parse_fit(&toks(
            r#"DensityFunction count by "HourOfDay, DayOfWeek" into smb_pdfmodel"#,
        ))
        .unwrap();
        assert_eq!(f.feature, "count");
        assert_eq!(f.by, ["HourOfDay", "DayOfWeek"]);
        assert_eq!(f.into.unwrap().name, "smb_pdfmodel");
        let f = parse_fit(&toks(
            "SMBDensity count BY h INTO app:m dist=norm threshold=0.001 show_density=T as out",
        ))
        .unwrap();
        assert_eq!(f.into.unwrap().namespace, Namespace::App);
        assert_eq!(f.params.dist, Some(DistKind::Normal));
        assert_eq!(f.params.show_density, Some(true));
        assert_eq!(f.output_name.as_deref(), Some("out"));
    }

    #[test]
    fn fit_errors_use_mltk_texts() {
        let e = |s: &str| parse_fit(&toks(s)).unwrap_err().0;
        assert_eq!(
            e("smbdensity count by HourOfDay,DayOfWeek"),
            MULTI_VALUE_SYNTAX
        );
        assert_eq!(e("smbdensity count bogus=1"), "Unexpected parameter: bogus");
        assert_eq!(
            e("smbdensity count show_density=maybe"),
            "Invalid value for show_density: must be a boolean"
        );
        assert!(e("smbdensity count dist=normal").contains("but found dist=\"normal\"."));
        assert_eq!(
            e("smbdensity count into ../x"),
            "Invalid model name \"../x\""
        );
        assert_eq!(e("smbdensity count into a/b"), "Invalid model name \"a/b\"");
        assert_eq!(
            e("smbdensity count into foo:m"),
            "You may only specify namespace \"app\", \"user\" ."
        );
        assert_eq!(
            e("smbdensity count by a by b"),
            "Syntax error: you may specify \"by\" only once"
        );
        assert!(
            e("smbdensity count threshold=abc")
                .starts_with("Invalid value for threshold: must have one or multiple float values")
        );
        assert!(e("kmeans count").contains("Unsupported algorithm"));
    }

    #[test]
    fn key_equals_value_is_rejoined() {
        let a = parse_apply(&toks("m threshold = 0.001")).unwrap();
        assert_eq!(a.params.threshold, Some(vec![0.001]));
        let a = parse_apply(&toks("m threshold= 0.002")).unwrap();
        assert_eq!(a.params.threshold, Some(vec![0.002]));
    }

    #[test]
    fn thresholds_validate_like_mltk() {
        let r = |t: Option<&[f64]>, l: Option<&[f64]>, u: Option<&[f64]>| {
            resolve_thresholds(t, l, u, 0.01, 5)
        };
        assert_eq!(r(None, None, None).unwrap().items, [Threshold::Total(0.01)]);
        assert!(
            r(Some(&[0.01]), Some(&[0.1]), None)
                .unwrap_err()
                .0
                .starts_with("Thresholds are ambiguous")
        );
        assert_eq!(
            r(Some(&[0.0]), None, None).unwrap_err().0,
            "Parameter \"threshold\" must be between 0.000000001 and 1"
        );
        assert_eq!(
            r(None, Some(&[0.6]), Some(&[0.5])).unwrap_err().0,
            "The sum of \"lower_threshold\" and \"upper_threshold\" can not be larger than 1"
        );
        assert!(
            r(None, Some(&[0.1, 0.2]), Some(&[0.1]))
                .unwrap_err()
                .0
                .starts_with("With multiple thresholds")
        );
        let six = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06];
        assert_eq!(
            r(Some(&six), None, None).unwrap_err().0,
            "The maximum number of allowed thresholds are 5. Found 6 thresholds."
        );
        let m = r(Some(&[0.01, 1e-5]), None, None).unwrap();
        assert_eq!(m.labels, ["0.01", "1e-05"]);
    }

    #[test]
    fn model_names() {
        assert!(ModelName::parse("smb_pdfmodel").is_ok());
        assert!(ModelName::parse("_x9").is_ok());
        for bad in [
            "",
            "9x",
            "a-b",
            "a b",
            "/etc/passwd",
            "..",
            "a\0b",
            "CON.txt",
            &"x".repeat(201),
        ] {
            assert!(ModelName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
