//! The traffic gate's tallies as `status.rollout.metricsChecks` keeps them: what the
//! canary's and the stable pods' metrics summed to. Reading and judging them is
//! the rollout's metrics gate.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One bucket of a latency histogram: how many observations were at most `le` seconds
/// (cumulative, as Prometheus exposes them).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// The upper bound, in seconds; `f64::INFINITY` for the `+Inf` bucket. Kept as text
    /// in JSON ("0.005", "+Inf") as Prometheus writes it: JSON numbers have no infinity.
    #[serde(with = "le_text")]
    #[schemars(with = "String", length(max = 32))]
    pub le: f64,
    pub count: f64,
}

/// What one side (canary or stable) served: the sums over its pods of the requests
/// counter, of its error series, and of the histogram's buckets. Kept in the status as
/// each side's baseline, so only tallies that are [`Tally::is_valid`] should be stored
/// (JSON cannot hold a NaN or an infinity).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub requests: f64,
    pub errors: f64,
    /// Sorted by bound; empty when no histogram is configured or exposed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub buckets: Vec<Bucket>,
}

/// A bucket bound as Prometheus writes it.
pub(crate) fn le_string(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".to_string()
    } else {
        le.to_string()
    }
}

/// `Bucket::le` in JSON: a string, "+Inf" for the last bucket.
mod le_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(le: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::le_string(*le))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_le(&text).map_err(D::Error::custom)
    }
}

/// A bucket bound as Prometheus writes it: a number or `+Inf`. NaN and −∞ are no bound.
pub(crate) fn parse_le(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(le) if !le.is_nan() && le != f64::NEG_INFINITY => Ok(le),
        _ => Err(format!(
            "le=\"{}\" is not a bucket bound (a number or +Inf)",
            text.chars().take(40).collect::<String>()
        )),
    }
}
