//! The Prometheus HTTP API query response (`/api/v1/query`, `/api/v1/query_range`).
//!
//! [`parse_response`] decodes the JSON envelope into a [`PrometheusResult`]; [`to_value`]
//! turns it into what Argo's Prometheus provider passes as `result`: a scalar becomes a
//! float, a vector the list of its sample values, a matrix all samples flattened into one
//! list. Sample values are strings parsed Go-style (`"NaN"`, `"+Inf"`, `"-Inf"`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::parse_go_float;
use crate::expr::Value;

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrometheusError {
    /// Prometheus answered `"status": "error"`.
    #[error("prometheus query failed ({error_type}): {error}")]
    Api {
        /// The `errorType` field (`bad_data`, `timeout`, `execution`, ...).
        error_type: String,
        /// The `error` message.
        error: String,
    },
    /// The body is not a well-formed response; `path` is the JSON path of the bad field
    /// (`.` for the whole document).
    #[error("malformed prometheus response at {path}: {message}")]
    Malformed {
        /// The JSON path, e.g. `data.result[0].value[1]`.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The result holds native histograms, which are not supported.
    #[error("native histograms are not supported (at {path})")]
    NativeHistogram {
        /// The JSON path of the histogram.
        path: String,
    },
    /// The query returned no values (Flagger's rule).
    #[error("no values found")]
    NoValues,
}

/// A successful query response.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusResult {
    /// The result, by `resultType`.
    pub data: QueryData,
    /// The `warnings` array, if any.
    pub warnings: Vec<String>,
    /// The `infos` array, if any.
    pub infos: Vec<String>,
}

/// `data`, by `resultType`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QueryData {
    /// `scalar`: `[ts, "v"]`.
    Scalar(Point),
    /// `string`: `[ts, "s"]`.
    String {
        /// Unix seconds.
        timestamp: f64,
        /// The string.
        value: String,
    },
    /// `vector`: one sample per series.
    Vector(Vec<InstantSample>),
    /// `matrix`: a range of samples per series.
    Matrix(Vec<RangeSeries>),
}

/// One `[ts, "v"]` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Unix seconds.
    pub timestamp: f64,
    /// The sample value.
    pub value: f64,
}

/// One series of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    /// The series labels.
    pub metric: BTreeMap<String, String>,
    /// Its sample.
    pub value: Point,
}

/// One series of a range matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// The series labels.
    pub metric: BTreeMap<String, String>,
    /// Its samples, oldest first.
    pub values: Vec<Point>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    status: RawStatus,
    #[serde(default)]
    data: Option<RawData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawStatus {
    Success,
    Error,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawData {
    result_type: RawResultType,
    result: serde_json::Value,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawResultType {
    Vector,
    Matrix,
    Scalar,
    String,
}

#[derive(Deserialize)]
struct RawInstant {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    histogram: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
    #[serde(default)]
    histograms: Option<serde::de::IgnoredAny>,
}

fn decode<'de, T: Deserialize<'de>>(
    de: impl serde::Deserializer<'de, Error = serde_json::Error>,
    prefix: &str,
) -> Result<T, PrometheusError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, p) => p.to_string(),
            (false, ".") => prefix.to_string(),
            (false, p) if p.starts_with('[') => format!("{prefix}{p}"),
            (false, p) => format!("{prefix}.{p}"),
        };
        PrometheusError::Malformed {
            path,
            message: e.into_inner().to_string(),
        }
    })
}

fn point(raw: (f64, String), path: String) -> Result<Point, PrometheusError> {
    match parse_go_float(&raw.1) {
        Some(value) => Ok(Point {
            timestamp: raw.0,
            value,
        }),
        None => Err(PrometheusError::Malformed {
            path,
            message: format!("invalid sample value {:?}", raw.1),
        }),
    }
}

/// Parses a query response body.
///
/// Errors: the error envelope ([`PrometheusError::Api`]), malformed JSON or fields with
/// their JSON path ([`PrometheusError::Malformed`]), native histograms
/// ([`PrometheusError::NativeHistogram`]), and a vector or matrix with no sample values
/// ([`PrometheusError::NoValues`]).
pub fn parse_response(body: &[u8]) -> Result<PrometheusResult, PrometheusError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let env: RawEnvelope = decode(&mut de, "")?;
    de.end().map_err(|e| PrometheusError::Malformed {
        path: ".".into(),
        message: e.to_string(),
    })?;
    if let RawStatus::Error = env.status {
        return Err(PrometheusError::Api {
            error_type: env.error_type.unwrap_or_default(),
            error: env.error.unwrap_or_default(),
        });
    }
    let Some(data) = env.data else {
        return Err(PrometheusError::Malformed {
            path: "data".into(),
            message: "missing field `data`".into(),
        });
    };
    let data = match data.result_type {
        RawResultType::Scalar => {
            let raw: (f64, String) = decode(&data.result, "data.result")?;
            QueryData::Scalar(point(raw, "data.result[1]".into())?)
        }
        RawResultType::String => {
            let (timestamp, value): (f64, String) = decode(&data.result, "data.result")?;
            QueryData::String { timestamp, value }
        }
        RawResultType::Vector => {
            let raw: Vec<RawInstant> = decode(&data.result, "data.result")?;
            let mut out = Vec::with_capacity(raw.len());
            for (i, s) in raw.into_iter().enumerate() {
                if s.histogram.is_some() {
                    return Err(PrometheusError::NativeHistogram {
                        path: format!("data.result[{i}].histogram"),
                    });
                }
                let Some(v) = s.value else {
                    return Err(PrometheusError::Malformed {
                        path: format!("data.result[{i}]"),
                        message: "missing field `value`".into(),
                    });
                };
                out.push(InstantSample {
                    metric: s.metric,
                    value: point(v, format!("data.result[{i}].value[1]"))?,
                });
            }
            if out.is_empty() {
                return Err(PrometheusError::NoValues);
            }
            QueryData::Vector(out)
        }
        RawResultType::Matrix => {
            let raw: Vec<RawRange> = decode(&data.result, "data.result")?;
            let mut out = Vec::with_capacity(raw.len());
            for (i, s) in raw.into_iter().enumerate() {
                if s.histograms.is_some() {
                    return Err(PrometheusError::NativeHistogram {
                        path: format!("data.result[{i}].histograms"),
                    });
                }
                let Some(vs) = s.values else {
                    return Err(PrometheusError::Malformed {
                        path: format!("data.result[{i}]"),
                        message: "missing field `values`".into(),
                    });
                };
                let values = vs
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| point(v, format!("data.result[{i}].values[{j}][1]")))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(RangeSeries {
                    metric: s.metric,
                    values,
                });
            }
            if out.iter().all(|s| s.values.is_empty()) {
                return Err(PrometheusError::NoValues);
            }
            QueryData::Matrix(out)
        }
    };
    Ok(PrometheusResult {
        data,
        warnings: env.warnings,
        infos: env.infos,
    })
}

/// What Argo's Prometheus provider passes as `result`: scalar → float, vector → the list of
/// sample values, matrix → all samples flattened into one list, string → the string.
pub fn to_value(result: &PrometheusResult) -> Value {
    match &result.data {
        QueryData::Scalar(p) => Value::Float(p.value),
        QueryData::String { value, .. } => Value::String(value.clone()),
        QueryData::Vector(samples) => Value::Array(
            samples
                .iter()
                .map(|s| Value::Float(s.value.value))
                .collect(),
        ),
        QueryData::Matrix(series) => Value::Array(
            series
                .iter()
                .flat_map(|s| s.values.iter().map(|p| Value::Float(p.value)))
                .collect(),
        ),
    }
}
