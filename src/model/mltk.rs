//! Reading DensityFunction models saved by Splunk MLTK (`lookups/__mlspl_<name>.mlmodel`), so a site that
//! already has `smb_pdfmodel` from MLTK keeps working without refitting. These files are only ever read.
//!
//! The file is a CSV with the header `algo,model,options` and one row (spec §5.1). `model` is the JSON
//! that MLTK's codec writes for the DensityFunction object (spec §5.2):
//!
//! - registered objects: `{"__mlspl_type": [module, class], "dict": <__dict__>}`;
//! - numpy arrays: `{"__mlspl_type": ["numpy", "ndarray"], "npy": base64(.npy bytes)}`;
//! - numpy scalars (an int64 `_min`, an int64 group value): `{"__mlspl_type": ["numpy", "int64"],
//!   "ndarray": <one-element array>}`; numpy float64 values are plain JSON numbers;
//! - Python's `json` writes `NaN`, `Infinity` and `-Infinity`, which strict JSON parsers reject; they are
//!   rewritten to sentinel strings before parsing (outside string literals only) and read back as numbers.
//!
//! The converter maps each group's distribution into an [`MltkDist`] first and then into our
//! [`Distribution`]; distribution kinds this build cannot score yet (Gaussian KDE, Beta) are decoded into
//! [`KdeParams`]/[`BetaParams`] and refused with a clear error, so supporting them is one match arm in
//! [`MltkDist::to_distribution`].
//!
//! Group keys: MLTK keys groups by pandas-typed by-field values (`7_Monday`, HourOfDay typed int64). The
//! imported groups keep the values as MLTK printed them (`7`) and the body's `key_canon` tells apply to
//! compare integer text by value for that field (`07` → `7`); see [`KeyCanon`].

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::{
    DensityBody, Group, KeyCanon, Model, ModelBody, ModelHeader, StoredParams, encode_key, key_cmp,
};
use crate::density::beta::Beta;
use crate::density::kde::GaussianKde;
use crate::density::{DistKind, Distribution, Exponential, GroupStats, Normal};
use crate::spl::{Metric, ThresholdSet, resolve_thresholds};

/// The algorithm name MLTK writes in the `algo` column for the models we read.
pub const ALGO: &str = "DensityFunction";

const NAN: &str = "\u{0}NaN";
const POS_INF: &str = "\u{0}Infinity";
const NEG_INF: &str = "\u{0}-Infinity";

/// The three cells of an `.mlmodel` file.
#[derive(Debug, Clone, PartialEq)]
pub struct MlmodelRow {
    pub algo: String,
    pub model: String,
    pub options: String,
}

/// Reads the CSV of an `.mlmodel` file (any field size; Python `csv.writer` quoting).
pub fn read_row(bytes: &[u8]) -> Result<MlmodelRow, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = r
        .headers()
        .map_err(|e| format!("not a valid MLTK model CSV: {e}"))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| {
                format!(
                    "not a valid MLTK model CSV: the header has no \"{name}\" column (expected algo,model,options, found {})",
                    headers.iter().collect::<Vec<_>>().join(",")
                )
            })
    };
    let (a, m, o) = (col("algo")?, col("model")?, col("options")?);
    let mut rec = csv::StringRecord::new();
    let got = r
        .read_record(&mut rec)
        .map_err(|e| format!("not a valid MLTK model CSV: {e}"))?;
    if !got {
        return Err("not a valid MLTK model CSV: it has a header but no model row".into());
    }
    let cell = |i: usize| rec.get(i).unwrap_or_default().to_string();
    Ok(MlmodelRow {
        algo: cell(a),
        model: cell(m),
        options: cell(o),
    })
}

/// Rewrites Python's `NaN`, `Infinity` and `-Infinity` literals outside strings into sentinel strings
/// that [`number`] reads back, so serde_json accepts the text.
pub fn sanitize_nonfinite(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let literal = match c {
            b'"' => {
                in_string = true;
                i += 1;
                continue;
            }
            b'N' if b[i..].starts_with(b"NaN") => Some(("NaN", "\"\\u0000NaN\"")),
            b'I' if b[i..].starts_with(b"Infinity") => Some(("Infinity", "\"\\u0000Infinity\"")),
            b'-' if b[i..].starts_with(b"-Infinity") => Some(("-Infinity", "\"\\u0000-Infinity\"")),
            _ => None,
        };
        match literal {
            Some((lit, repl)) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 64));
                o.push_str(&text[copied..i]);
                o.push_str(repl);
                i += lit.len();
                copied = i;
            }
            None => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Parses MLTK's JSON (Python `json.dumps` output, with `NaN`/`Infinity`).
pub fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(&sanitize_nonfinite(text)).map_err(|e| format!("invalid JSON: {e}"))
}

/// Standard base64 (RFC 4648, `+/`, optional `=` padding), as Python's `b64encode` writes it.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return Err("invalid base64: bad length or padding".into());
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            let v = val(c)
                .ok_or_else(|| format!("invalid base64: unexpected character {:?}", c as char))?;
            acc |= v << (18 - 6 * k);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// A decoded numpy array, flattened.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyArray {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

impl NpyArray {
    pub fn len(&self) -> usize {
        match self {
            NpyArray::F64(v) => v.len(),
            NpyArray::I64(v) => v.len(),
            NpyArray::Bool(v) => v.len(),
            NpyArray::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as floats (None for strings).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        match self {
            NpyArray::F64(v) => Some(v.clone()),
            NpyArray::I64(v) => Some(v.iter().map(|&x| x as f64).collect()),
            NpyArray::Bool(v) => Some(v.iter().map(|&x| f64::from(u8::from(x))).collect()),
            NpyArray::Str(_) => None,
        }
    }

    /// Element `i` as a [`Scalar`].
    fn scalar(&self, i: usize) -> Option<Scalar> {
        Some(match self {
            NpyArray::F64(v) => Scalar::Float(*v.get(i)?),
            NpyArray::I64(v) => Scalar::Int(*v.get(i)?),
            NpyArray::Bool(v) => Scalar::Bool(*v.get(i)?),
            NpyArray::Str(v) => Scalar::Str(v.get(i)?.clone()),
        })
    }
}

fn npy_header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// Decodes `.npy` bytes (format versions 1–3) of little-endian or byte-order-free numeric, bool and
/// unicode arrays, the dtypes numpy's `np.save` writes for MLTK's models.
pub fn decode_npy(b: &[u8]) -> Result<NpyArray, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic)".into());
    }
    let (header_len, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = b
        .get(start..start + header_len)
        .ok_or(".npy header is truncated")?;
    let header = std::str::from_utf8(header).map_err(|_| ".npy header is not text")?;
    let descr = npy_header_value(header, "descr")
        .and_then(|r| {
            let q = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let r = &r[1..];
            Some(&r[..r.find(q)?])
        })
        .ok_or_else(|| format!(".npy header has no descr: {header}"))?;
    let shape = npy_header_value(header, "shape")
        .and_then(|r| Some(&r[r.find('(')? + 1..r.find(')')?]))
        .ok_or_else(|| format!(".npy header has no shape: {header}"))?;
    let mut count = 1usize;
    for d in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: usize = d
            .trim_end_matches('L')
            .parse()
            .map_err(|_| format!(".npy shape {shape:?} is not a tuple of integers"))?;
        count = count.checked_mul(d).ok_or(".npy shape overflows")?;
    }
    let data = &b[start + header_len..];
    let (order, kind) = descr.split_at(1.min(descr.len()));
    if !matches!(order, "<" | "|" | "=") {
        return Err(format!(
            ".npy dtype {descr:?} is not supported (big-endian)"
        ));
    }
    let (code, size) = kind.split_at(1.min(kind.len()));
    let size: usize = size
        .parse()
        .map_err(|_| format!(".npy dtype {descr:?} is not supported"))?;
    let item = if code == "U" { 4 * size } else { size };
    let need = count.checked_mul(item).ok_or(".npy size overflows")?;
    if data.len() < need {
        return Err(format!(
            ".npy data is truncated: {} bytes for {count} values of {descr}",
            data.len()
        ));
    }
    let items = data[..need].chunks_exact(item.max(1)).take(count);
    let le = |c: &[u8]| {
        let mut a = [0u8; 8];
        a[..c.len()].copy_from_slice(c);
        a
    };
    Ok(match (code, size) {
        ("f", 8) => NpyArray::F64(items.map(|c| f64::from_le_bytes(le(c))).collect()),
        ("f", 4) => NpyArray::F64(
            items
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
        ),
        ("i", 1 | 2 | 4 | 8) => NpyArray::I64(
            items
                .map(|c| {
                    let shift = 64 - 8 * c.len() as u32;
                    (i64::from_le_bytes(le(c)) << shift) >> shift
                })
                .collect(),
        ),
        ("u", 1 | 2 | 4 | 8) => {
            let mut v = Vec::with_capacity(count);
            for c in items {
                let x = u64::from_le_bytes(le(c));
                v.push(
                    i64::try_from(x).map_err(|_| format!(".npy uint64 value {x} is too large"))?,
                );
            }
            NpyArray::I64(v)
        }
        ("b", 1) => NpyArray::Bool(items.map(|c| c[0] != 0).collect()),
        ("U", _) if size > 0 => {
            let mut v = Vec::with_capacity(count);
            for c in items {
                let s: String = c
                    .chunks_exact(4)
                    .map(|u| u32::from_le_bytes([u[0], u[1], u[2], u[3]]))
                    .take_while(|&u| u != 0)
                    .map(|u| char::from_u32(u).ok_or(".npy string holds an invalid character"))
                    .collect::<Result<_, _>>()?;
                v.push(s);
            }
            NpyArray::Str(v)
        }
        _ => return Err(format!(".npy dtype {descr:?} is not supported")),
    })
}

/// A by-field value as MLTK stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    /// Python's `str()` of the value: what MLTK's `"_".join(map(str, key))` used.
    pub fn python_str(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => crate::density::pyfmt::repr(*f),
            Scalar::Bool(true) => "True".into(),
            Scalar::Bool(false) => "False".into(),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// The `__mlspl_type` of an encoded object.
fn mlspl_type(v: &Value) -> Option<(&str, &str)> {
    let t = v.get("__mlspl_type")?.as_array()?;
    Some((t.first()?.as_str()?, t.get(1)?.as_str()?))
}

/// Decodes an encoded numpy array, or a numpy scalar as a one-element array.
fn ndarray(v: &Value) -> Result<Option<NpyArray>, String> {
    match mlspl_type(v) {
        Some(("numpy", "ndarray")) => {
            let npy = v
                .get("npy")
                .and_then(Value::as_str)
                .ok_or("a numpy array has no \"npy\" payload")?;
            let bytes = base64_decode(npy).map_err(|e| format!("a numpy array: {e}"))?;
            decode_npy(&bytes)
                .map(Some)
                .map_err(|e| format!("a numpy array: {e}"))
        }
        Some(("numpy", _)) => match v.get("ndarray") {
            Some(inner) => ndarray(inner),
            None => Err("a numpy scalar has no \"ndarray\" payload".into()),
        },
        _ => Ok(None),
    }
}

/// A scalar: a JSON number, bool or string, a non-finite sentinel, or a numpy scalar/one-element array.
pub fn scalar(v: &Value) -> Result<Option<Scalar>, String> {
    Ok(match v {
        Value::Null => None,
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Scalar::Int(i),
            None => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
        }),
        Value::String(s) => Some(match s.as_str() {
            NAN => Scalar::Float(f64::NAN),
            POS_INF => Scalar::Float(f64::INFINITY),
            NEG_INF => Scalar::Float(f64::NEG_INFINITY),
            _ => Scalar::Str(s.clone()),
        }),
        Value::Object(_) => match ndarray(v)? {
            Some(a) if a.len() == 1 => a.scalar(0),
            Some(a) => return Err(format!("expected one value, found an array of {}", a.len())),
            None => return Err("expected a number, found an object".into()),
        },
        Value::Array(_) => return Err("expected a number, found a list".into()),
    })
}

/// A number, and whether it was integer-typed.
pub fn number(v: &Value) -> Result<Option<(f64, bool)>, String> {
    Ok(match scalar(v)? {
        None => None,
        Some(Scalar::Int(i)) => Some((i as f64, true)),
        Some(Scalar::Float(f)) => Some((f, false)),
        Some(Scalar::Bool(b)) => Some((f64::from(u8::from(b)), true)),
        Some(Scalar::Str(s)) => return Err(format!("expected a number, found the text {s:?}")),
    })
}

/// `None`, one number, or a list of numbers (MLTK's threshold tuples; older models stored one float).
fn number_list(v: Option<&Value>) -> Result<Option<Vec<f64>>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                number(x)?
                    .map(|n| n.0)
                    .ok_or_else(|| "null in a number list".to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(x) => Ok(number(x)?.map(|n| vec![n.0])),
    }
}

/// The `dict` of an encoded object of class `class` (module ignored), or an error naming `what`.
fn object_dict<'a>(v: &'a Value, what: &str) -> Result<(&'a str, &'a Map<String, Value>), String> {
    let (_, class) = mlspl_type(v).ok_or_else(|| format!("{what} is not an encoded object"))?;
    let dict = v
        .get("dict")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{what} ({class}) has no \"dict\""))?;
    Ok((class, dict))
}

/// Parameters of an MLTK Gaussian KDE group (not scorable by this build yet).
#[derive(Debug, Clone, PartialEq)]
pub struct KdeParams {
    /// The stored training sample (`_data`, at most `max_kde_parameter_size` points).
    pub points: Vec<f64>,
    /// `_other_params.bandwidth`, when MLTK stored it.
    pub bandwidth: Option<f64>,
}

/// Parameters of an MLTK Beta group (not scorable by this build yet).
#[derive(Debug, Clone, PartialEq)]
pub struct BetaParams {
    pub alpha: f64,
    pub beta: f64,
    /// `_mean`/`_std`: loc and scale of the fit on the normalised scale.
    pub loc: f64,
    pub scale: f64,
    pub min: f64,
    pub max: f64,
}

/// One group's distribution as MLTK stored it.
#[derive(Debug, Clone, PartialEq)]
pub enum MltkDist {
    Normal { mean: f64, std: f64 },
    Exponential { loc: f64, scale: f64 },
    Kde(KdeParams),
    Beta(BetaParams),
}

impl MltkDist {
    pub fn type_name(&self) -> &'static str {
        match self {
            MltkDist::Normal { .. } => "Normal",
            MltkDist::Exponential { .. } => "Exponential",
            MltkDist::Kde(_) => "Gaussian KDE",
            MltkDist::Beta(_) => "Beta",
        }
    }

    /// Our distribution for it. Adding a distribution kind to [`Distribution`] means adding its arm here.
    pub fn to_distribution(&self) -> Result<Distribution, String> {
        match self {
            MltkDist::Normal { mean, std } => Ok(Distribution::Normal(Normal {
                mean: *mean,
                std: *std,
            })),
            MltkDist::Exponential { loc, scale } => Ok(Distribution::Exponential(Exponential {
                loc: *loc,
                scale: *scale,
            })),
            // scipy rebuilds the kernel from the stored sample, so do we.
            MltkDist::Kde(k) => GaussianKde::fit(&k.points, usize::MAX, 0)
                .map(Distribution::GaussianKde)
                .map_err(|e| format!("its Gaussian KDE sample cannot be used: {e}")),
            MltkDist::Beta(b) => Ok(Distribution::Beta(Beta {
                alpha: b.alpha,
                beta: b.beta,
                loc: b.loc,
                scale: b.scale,
                min: b.min,
                max: b.max,
                cardinality: 0,
            })),
        }
    }
}

/// One group of an MLTK model, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct MltkGroup {
    /// The by-field values, in `split_by` order.
    pub values: Vec<Scalar>,
    pub dist: MltkDist,
    pub min: f64,
    pub max: f64,
    /// `_min` was integer-typed (the training column was int64).
    pub min_integral: bool,
    pub cardinality: u64,
    /// The stored training sample (`_data`).
    pub data: Option<Vec<f64>>,
}

/// Decodes one `ProbabilityDistribution` object (unwrapping `AutoSelectDistribution`).
fn decode_dist(v: &Value) -> Result<MltkGroup, String> {
    let (class, d) = object_dict(v, "a group's distribution")?;
    if class == "AutoSelectDistribution" {
        let inner = d
            .get("_dist")
            .filter(|x| !x.is_null())
            .ok_or("an auto distribution holds no chosen distribution (\"_dist\")")?;
        let mut g = decode_dist(inner)?;
        // The wrapper counts every point, the chosen distribution may not.
        if let Some((n, _)) = d.get("_cardinality").map(number).transpose()?.flatten() {
            g.cardinality = n as u64;
        }
        return Ok(g);
    }
    let get = |k: &str| -> Result<Option<(f64, bool)>, String> {
        d.get(k)
            .map(number)
            .transpose()
            .map(Option::flatten)
            .map_err(|e| format!("{class}.{k}: {e}"))
    };
    let need = |k: &str| -> Result<f64, String> {
        get(k)?
            .map(|x| x.0)
            .ok_or_else(|| format!("{class} has no \"{k}\""))
    };
    let data = match d.get("_data") {
        None | Some(Value::Null) => None,
        Some(x) => match ndarray(x).map_err(|e| format!("{class}._data: {e}"))? {
            Some(a) => Some(
                a.to_f64()
                    .ok_or_else(|| format!("{class}._data is not numeric"))?,
            ),
            None => return Err(format!("{class}._data is not a numpy array")),
        },
    };
    let (mean, std) = (need("_mean")?, need("_std")?);
    let dist = match class {
        "NormalDistribution" => MltkDist::Normal { mean, std },
        "ExponentialDistribution" => MltkDist::Exponential {
            loc: mean,
            scale: std,
        },
        "KDEDistribution" => MltkDist::Kde(KdeParams {
            points: data.clone().unwrap_or_default(),
            bandwidth: d
                .get("_other_params")
                .and_then(|o| o.get("bandwidth"))
                .map(number)
                .transpose()?
                .flatten()
                .map(|x| x.0),
        }),
        "BetaDistribution" => MltkDist::Beta(BetaParams {
            alpha: need("_alpha")?,
            beta: need("_beta")?,
            loc: mean,
            scale: std,
            min: need("_min")?,
            max: need("_max")?,
        }),
        other => return Err(format!("unknown distribution class {other}")),
    };
    let (min, min_integral, max) = match (get("_min")?, get("_max")?) {
        (Some((mn, int)), Some((mx, _))) => (mn, int, mx),
        // MLTK before 4.4 stored no min/max: use the stored sample.
        _ => {
            let s = data.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
                format!("{class} has neither \"_min\"/\"_max\" nor training data")
            })?;
            let mn = s.iter().copied().fold(f64::INFINITY, f64::min);
            let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (mn, false, mx)
        }
    };
    let cardinality = match get("_cardinality")? {
        Some((n, _)) => n as u64,
        None => data.as_ref().map_or(0, |s| s.len() as u64),
    };
    Ok(MltkGroup {
        values: Vec::new(),
        dist,
        min,
        max,
        min_integral,
        cardinality,
        data,
    })
}

/// Everything read from an `.mlmodel` file.
#[derive(Debug, Clone)]
pub struct MltkModel {
    pub header: ModelHeader,
    /// The `_dist` value (a distribution, or a map of group key → LabeledDistribution).
    dist: Value,
}

/// Reads an `.mlmodel` file's CSV and JSON and its header. `created` is the file's modification time.
pub fn read(bytes: &[u8], created: u64) -> Result<MltkModel, String> {
    let row = read_row(bytes)?;
    if row.algo != ALGO {
        return Err(format!(
            "it holds an MLTK {} model; smbdensity reads only MLTK {ALGO} models",
            if row.algo.is_empty() {
                "(unnamed)"
            } else {
                &row.algo
            }
        ));
    }
    let model = parse_json(&row.model).map_err(|e| format!("the \"model\" cell: {e}"))?;
    let options = if row.options.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        parse_json(&row.options).map_err(|e| format!("the \"options\" cell: {e}"))?
    };
    let (class, d) = object_dict(&model, "the model")?;
    if class != ALGO {
        return Err(format!("the model object is a {class}, not a {ALGO}"));
    }
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let feature = strings(d.get("feature_variables"))
        .into_iter()
        .next()
        .or_else(|| strings(options.get("feature_variables")).into_iter().next())
        .ok_or("the model has no feature variable")?;
    let by_fields = match d.get("split_by") {
        Some(Value::Null) | None => Vec::new(),
        Some(v) => strings(Some(v)),
    };
    if by_fields.iter().any(|f| f == "__group")
        || d.get("_supervise_split_by") == Some(&Value::Bool(true))
    {
        return Err(
            "it was fitted with supervise_split_by=true, which smbdensity does not support".into(),
        );
    }
    let params = d
        .get("_params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let flag = |k: &str| params.get(k).and_then(Value::as_bool).unwrap_or(false);
    let dist_type = d
        .get("_dist_type")
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let dist = DistKind::from_param(dist_type)
        .ok_or_else(|| format!("unknown dist type {dist_type:?}"))?;
    let exclude_dist = strings(d.get("_exclude_dist"))
        .iter()
        .filter_map(|s| DistKind::from_param(s.trim()))
        .collect();
    let metric = match d.get("_metric").and_then(Value::as_str) {
        Some("kolmogorov_smirnov") => Metric::KolmogorovSmirnov,
        _ => Metric::Wasserstein,
    };
    let default_threshold = options
        .pointer("/mlspl_limits/default_prob_threshold")
        .and_then(|v| match v {
            Value::String(s) => s.trim().parse().ok(),
            v => v.as_f64(),
        })
        .unwrap_or(0.01);
    let thresholds = stored_thresholds(d.get("_threshold"), default_threshold)?;
    let group_count = match d.get("_dist") {
        Some(Value::Object(m)) if !by_fields.is_empty() => m.len() as u64,
        Some(Value::Null) | None => 0,
        Some(_) => 1,
    };
    let header = ModelHeader {
        algorithm: row.algo.clone(),
        feature,
        by_fields,
        params: StoredParams {
            dist,
            exclude_dist,
            metric,
            thresholds,
            show_density: flag("show_density"),
            sample: flag("sample"),
            full_sample: flag("full_sample"),
            show_options: params
                .get("show_options")
                .and_then(Value::as_str)
                .map(String::from),
            output_name: options
                .get("output_name")
                .and_then(Value::as_str)
                .map(String::from),
            random_state: params.get("random_state").and_then(Value::as_i64),
        },
        args: strings(options.get("args")),
        app: String::new(),
        owner: String::new(),
        group_count,
        created,
    };
    let dist = d.get("_dist").cloned().unwrap_or(Value::Null);
    Ok(MltkModel { header, dist })
}

/// MLTK's stored `OutlierThreshold`: lower/upper win when either is set; otherwise `threshold`
/// (which MLTK always fills, with the default if none was given).
fn stored_thresholds(v: Option<&Value>, default: f64) -> Result<ThresholdSet, String> {
    let (t, lower, upper) = match v {
        None | Some(Value::Null) => (None, None, None),
        Some(v) => {
            let (_, d) = object_dict(v, "the model's threshold")?;
            let list = |k| number_list(d.get(k)).map_err(|e| format!("_threshold.{k}: {e}"));
            (list("threshold")?, list("lower")?, list("upper")?)
        }
    };
    let nonempty = |x: Option<Vec<f64>>| x.filter(|v| !v.is_empty());
    let (t, lower, upper) = (nonempty(t), nonempty(lower), nonempty(upper));
    let r = if lower.is_some() || upper.is_some() {
        resolve_thresholds(
            None,
            lower.as_deref(),
            upper.as_deref(),
            default,
            usize::MAX,
        )
    } else {
        resolve_thresholds(t.as_deref(), None, None, default, usize::MAX)
    };
    r.map_err(|e| format!("the stored threshold is invalid: {}", e.0))
}

impl MltkModel {
    /// Decodes every group (the `_dist` value).
    pub fn groups(&self) -> Result<Vec<MltkGroup>, String> {
        let by = &self.header.by_fields;
        if by.is_empty() {
            if self.dist.is_null() {
                return Err("the model holds no fitted distribution".into());
            }
            return Ok(vec![decode_dist(&self.dist)?]);
        }
        let map = self
            .dist
            .as_object()
            .ok_or("a model with a by clause holds no group map")?;
        let mut out = Vec::with_capacity(map.len());
        for (key, labeled) in map {
            let what = format!("group {key:?}");
            let (class, ld) = object_dict(labeled, &what)?;
            let (dist, fields) = if class == "LabeledDistribution" {
                (
                    ld.get("dist")
                        .ok_or_else(|| format!("{what} has no \"dist\""))?,
                    ld.get("fields"),
                )
            } else {
                (labeled, None)
            };
            let mut g = decode_dist(dist).map_err(|e| format!("{what}: {e}"))?;
            g.values = match fields.and_then(Value::as_object) {
                Some(f) => by
                    .iter()
                    .map(|name| {
                        let v = f
                            .get(name)
                            .ok_or_else(|| format!("{what} has no value for {name:?}"))?;
                        scalar(v)
                            .map_err(|e| format!("{what}.{name}: {e}"))?
                            .ok_or_else(|| format!("{what} has a null value for {name:?}"))
                    })
                    .collect::<Result<_, String>>()?,
                // No field map: split MLTK's "_"-joined key, which is only unambiguous field by field
                // when it has exactly one part per by-field.
                None => {
                    let parts: Vec<&str> = if by.len() == 1 {
                        vec![key.as_str()]
                    } else {
                        key.split('_').collect()
                    };
                    if parts.len() != by.len() {
                        return Err(format!(
                            "{what} cannot be split into the values of {}",
                            by.join(",")
                        ));
                    }
                    parts
                        .into_iter()
                        .map(|p| Scalar::Str(p.to_string()))
                        .collect()
                }
            };
            out.push(g);
        }
        Ok(out)
    }

    /// Converts into our model: groups in natural key order, boundaries for the stored thresholds,
    /// and the by-field canonicalisation apply needs to find MLTK's groups.
    pub fn into_model(self) -> Result<Model, String> {
        let groups = self.groups()?;
        let nby = self.header.by_fields.len();
        let key_canon: Vec<KeyCanon> = (0..nby)
            .map(|i| {
                if !groups.is_empty()
                    && groups.iter().all(|g| matches!(g.values[i], Scalar::Int(_)))
                {
                    KeyCanon::Integer
                } else if !groups.is_empty()
                    && groups
                        .iter()
                        .all(|g| matches!(g.values[i], Scalar::Bool(_)))
                {
                    KeyCanon::Bool
                } else {
                    KeyCanon::Text
                }
            })
            .collect();
        let integral = groups.first().is_some_and(|g| g.min_integral);
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let texts: Vec<String> = g.values.iter().map(Scalar::python_str).collect();
            let mut key = Vec::new();
            encode_key(texts.iter().map(|t| t.as_bytes()), &mut key);
            let dist = g.dist.to_distribution().map_err(|e| {
                if nby == 0 {
                    e
                } else {
                    format!("group {:?}: {e}", texts.join("_"))
                }
            })?;
            let stats = group_stats(&g);
            let dist = match dist {
                Distribution::GaussianKde(mut k) => {
                    k.cardinality = stats.count;
                    Distribution::GaussianKde(k)
                }
                Distribution::Beta(mut b) => {
                    b.cardinality = stats.count;
                    Distribution::Beta(b)
                }
                d => d,
            };
            let boundaries = self
                .header
                .params
                .thresholds
                .items
                .iter()
                .map(|th| dist.boundaries(*th, integral))
                .collect();
            out.push(Group {
                key,
                stats,
                dist,
                distance: f64::NAN,
                sample: Vec::new(),
                boundaries,
            });
        }
        out.sort_by(|a, b| key_cmp(&a.key, &b.key));
        if let Some(w) = out.windows(2).find(|w| w[0].key == w[1].key) {
            let shown: Vec<String> = super::decode_key(&w[0].key)
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            return Err(format!(
                "two groups have the same by-field values {shown:?}"
            ));
        }
        let mut header = self.header;
        header.group_count = out.len() as u64;
        Ok(Model {
            header,
            body: ModelBody::Density(DensityBody {
                integral_feature: integral,
                groups: out,
                key_canon,
            }),
        })
    }
}

/// Training statistics of an imported group: count, min and max as MLTK recorded them; mean and the
/// sum of squared deviations from the fitted Normal, else from the stored sample scaled to the count.
fn group_stats(g: &MltkGroup) -> GroupStats {
    let n = g.cardinality;
    let sample = g.data.as_deref().filter(|s| !s.is_empty());
    let (mean, m2) = match (&g.dist, sample) {
        (MltkDist::Normal { mean, std }, _) => (*mean, std * std * n as f64),
        (_, Some(s)) => {
            let mut st = GroupStats::default();
            s.iter().for_each(|&x| st.push(x));
            (st.mean, st.m2 / s.len() as f64 * n as f64)
        }
        (MltkDist::Exponential { loc, scale }, None) => (loc + scale, scale * scale * n as f64),
        _ => ((g.min + g.max) / 2.0, 0.0),
    };
    GroupStats {
        count: n,
        mean,
        m2,
        min: g.min,
        max: g.max,
        first: sample.map_or(g.min, |s| s[0]),
    }
}

/// Reads an `.mlmodel` file into our model.
pub fn read_model(bytes: &[u8], created: u64) -> Result<Model, String> {
    read(bytes, created)?.into_model()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in bytes.chunks(3) {
            let n = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for k in 0..4 {
                if k <= c.len() {
                    s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn nonfinite_literals_outside_strings_only() {
        let v = parse_json(r#"{"a": NaN, "b": [Infinity, -Infinity, 1.5], "s": "NaN Infinity \" -Infinity", "t": "x\\"}"#).unwrap();
        assert!(number(&v["a"]).unwrap().unwrap().0.is_nan());
        assert_eq!(number(&v["b"][0]).unwrap(), Some((f64::INFINITY, false)));
        assert_eq!(
            number(&v["b"][1]).unwrap(),
            Some((f64::NEG_INFINITY, false))
        );
        assert_eq!(number(&v["b"][2]).unwrap(), Some((1.5, false)));
        assert_eq!(v["s"], "NaN Infinity \" -Infinity");
        assert_eq!(v["t"], "x\\");
        assert!(matches!(
            sanitize_nonfinite(r#"{"a": 1}"#),
            Cow::Borrowed(_)
        ));
        assert_eq!(number(&serde_json::json!(7)).unwrap(), Some((7.0, true)));
        assert!(number(&serde_json::json!("seven")).is_err());
        assert!(parse_json("{\"a\": nan}").is_err());
    }

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for n in 0..10 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&b64(&data)).unwrap(), data, "{n}");
        }
        assert_eq!(base64_decode("aGk").unwrap(), b"hi");
        assert!(
            base64_decode("k05V!!!!")
                .unwrap_err()
                .contains("unexpected character '!'")
        );
        assert!(base64_decode("a").is_err());
        assert!(base64_decode("aa===").is_err());
    }

    #[test]
    fn npy_dtypes() {
        let f: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(
            decode_npy(&npy("<f8", "(2,)", &f)).unwrap(),
            NpyArray::F64(vec![1.5, -2.0])
        );
        let i: Vec<u8> = [7i64, -3].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            decode_npy(&npy("<i8", "(2,)", &i)).unwrap(),
            NpyArray::I64(vec![7, -3])
        );
        let i4: Vec<u8> = [-5i32].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            decode_npy(&npy("<i4", "(1,)", &i4)).unwrap(),
            NpyArray::I64(vec![-5])
        );
        assert_eq!(
            decode_npy(&npy("|b1", "(3,)", &[1, 0, 1])).unwrap(),
            NpyArray::Bool(vec![true, false, true])
        );
        let mut u = Vec::new();
        for s in ["Monday", "Tue"] {
            let mut cs: Vec<u32> = s.chars().map(|c| c as u32).collect();
            cs.resize(6, 0);
            u.extend(cs.iter().flat_map(|c| c.to_le_bytes()));
        }
        assert_eq!(
            decode_npy(&npy("<U6", "(2,)", &u)).unwrap(),
            NpyArray::Str(vec!["Monday".into(), "Tue".into()])
        );
        // A 0-d array (shape ()) holds one value.
        assert_eq!(
            decode_npy(&npy("<i8", "()", &i[..8])).unwrap(),
            NpyArray::I64(vec![7])
        );
        assert!(
            decode_npy(&npy("<f8", "(3,)", &f))
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            decode_npy(&npy(">f8", "(2,)", &f))
                .unwrap_err()
                .contains("big-endian")
        );
        assert!(
            decode_npy(&npy("<c16", "(1,)", &[0; 16]))
                .unwrap_err()
                .contains("not supported")
        );
        assert!(decode_npy(b"garbage").unwrap_err().contains("magic"));
    }

    #[test]
    fn numpy_scalars_decode() {
        let i: Vec<u8> = 7i64.to_le_bytes().to_vec();
        let v = serde_json::json!({"__mlspl_type": ["numpy", "int64"],
            "ndarray": {"__mlspl_type": ["numpy", "ndarray"], "npy": b64(&npy("<i8", "(1,)", &i))}});
        assert_eq!(scalar(&v).unwrap(), Some(Scalar::Int(7)));
        assert_eq!(Scalar::Int(7).python_str(), "7");
        assert_eq!(Scalar::Bool(true).python_str(), "True");
    }

    fn mlmodel(algo: &str, model: &str) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["algo", "model", "options"]).unwrap();
        w.write_record([algo, model, "{}"]).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn errors_are_clear() {
        let e = read_model(&mlmodel("LinearRegression", "{}"), 0).unwrap_err();
        assert!(e.contains("MLTK LinearRegression model"), "{e}");
        assert!(
            read_model(b"algo,model\nDensityFunction,{}\n", 0)
                .unwrap_err()
                .contains("\"options\"")
        );
        assert!(
            read_model(b"algo,model,options\n", 0)
                .unwrap_err()
                .contains("no model row")
        );
        assert!(
            read_model(b"algo,model,options\nDensityFunction,\"{\",\"x\"\n", 0)
                .unwrap_err()
                .contains("invalid JSON")
        );
        let e = read_model(&mlmodel("DensityFunction", r#"{"__mlspl_type": ["algos.DensityFunction", "DensityFunction"], "dict": {"feature_variables": ["count"], "split_by": null, "_dist_type": "norm",
              "_dist": {"__mlspl_type": ["x", "NormalDistribution"], "dict": {"_mean": 1.0, "_std": 2.0, "_min": 0.0, "_max": 3.0, "_cardinality": 3,
                 "_data": {"__mlspl_type": ["numpy", "ndarray"], "npy": "k05V!!!!"}}}}}"#), 0).unwrap_err();
        assert!(e.contains("_data") && e.contains("base64"), "{e}");
    }

    #[test]
    fn minimal_normal_model_converts() {
        let m = read_model(&mlmodel("DensityFunction", r#"{"__mlspl_type": ["algos.DensityFunction", "DensityFunction"], "dict": {"feature_variables": ["count"], "split_by": null, "_dist_type": "norm",
              "_params": {"threshold": [0.05], "show_density": true},
              "_threshold": {"__mlspl_type": ["m", "OutlierThreshold"], "dict": {"threshold": 0.05, "lower": null, "upper": null}},
              "_dist": {"__mlspl_type": ["x", "NormalDistribution"], "dict": {"_mean": 10.0, "_std": 2.0, "_min": 4.5, "_max": 15.0, "_cardinality": 30, "_distance": NaN}}}}"#), 5).unwrap();
        assert_eq!(m.header.feature, "count");
        assert!(m.header.params.show_density);
        assert_eq!(
            m.header.params.thresholds.items,
            vec![crate::density::Threshold::Total(0.05)]
        );
        let ModelBody::Density(b) = m.body else {
            panic!("a DensityFunction model")
        };
        assert!(!b.integral_feature && b.key_canon.is_empty());
        assert_eq!(b.groups.len(), 1);
        assert_eq!(b.groups[0].stats.count, 30);
        assert!((b.groups[0].stats.std_ddof0() - 2.0).abs() < 1e-12);
        assert_eq!(
            crate::density::ranges_text(&b.groups[0].boundaries[0]),
            "-Infinity:6.0801:0.025\n13.9199:Infinity:0.025"
        );
    }
}
