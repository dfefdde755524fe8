//! The metrics gate: a canary's traffic judged against the stable pods' traffic, from
//! what each pod exposes in Prometheus' text format (`/metrics`).
//!
//! Pure: the caller scrapes, keeps the baselines and the clock. The flow is
//! 1. [`Tally::read`] each ready pod's scrape and [`Tally::add`] them per side;
//! 2. the sums at the step's first scrape are that side's baseline (kept in the status);
//! 3. [`Tally::since`] the baseline gives the traffic of the step so far, or `None` when a
//!    counter went down (a pod restarted or left): then the baseline is retaken;
//! 4. [`judge`] the two deltas against the [`Limits`].
//!
//! Deltas, not totals: a stable pod has served the old version for days, and its
//! lifetime error ratio says nothing about the minutes the canary has been running.
//!
//! Everything read comes from arbitrary pods, so the parser is bounded (input and line
//! size, buckets per series) and nothing here panics on odd numbers: a NaN, an infinity
//! or a negative count is refused or makes the tally invalid, and an invalid tally never
//! passes.

use crate::api::traffic::{le_string, parse_le};
pub use crate::api::{Bucket, Tally};
pub use crate::label_match::{LabelMatch, MatchOp};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A scrape larger than this is refused: a pod's metrics are kilobytes, and the operator
/// holds every scrape of a round in memory.
pub const MAX_SCRAPE_BYTES: usize = 4 << 20;
/// A line longer than this is refused (a runaway label value, or not the text format).
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// One histogram series may have at most this many buckets: the sums are kept in the
/// resource's status, which must stay small (Prometheus' defaults are 12).
pub const MAX_BUCKETS: usize = 128;
/// Slack in the comparisons with the limits: 1.1% − 0.1% is 1.0000000000000002 in
/// floating point, and must not fail a "max +1%".
const EPSILON: f64 = 1e-9;

/// What the gate reads from a scrape, as configured by the user.
#[derive(Clone, Copy, Debug)]
pub struct Selector<'a> {
    /// The requests counter's exact name as exposed (with its `_total`), e.g.
    /// `testapp_http_requests_total`; all its series are summed.
    pub requests: &'a str,
    /// Which of the requests counter's series count as errors, e.g. `code=~"5.."`.
    pub errors: &'a LabelMatch,
    /// A latency histogram's base name (in seconds, Prometheus' base unit), e.g.
    /// `testapp_http_request_duration_seconds`: its `<name>_bucket{le="…"}` series are read.
    pub histogram: Option<&'a str>,
}

/// At most 120 characters of `text`, for messages.
fn shorten(text: &str) -> Cow<'_, str> {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

impl Tally {
    /// One pod's scrape, in Prometheus' text format.
    ///
    /// Comments, other metrics, timestamps and exemplars are ignored. A requests metric
    /// that is not there counts as zero requests: a fresh pod exposes a counter vector's
    /// series only once it has served a request. A histogram series must have its `+Inf`
    /// bucket; the series of a labelled histogram are summed by bound. Metric names in
    /// quotes (Prometheus 3's UTF-8 names, `{"a.b",…}`) are not read.
    ///
    /// Refused, with the line's number: input over [`MAX_SCRAPE_BYTES`], a line over
    /// [`MAX_LINE_BYTES`], a malformed line of a metric that is read, a count that is
    /// not a finite number ≥ 0 (a NaN counter is no count), a bucket without a valid `le`,
    /// more than [`MAX_BUCKETS`] buckets in a series.
    pub fn read(text: &str, selector: &Selector) -> Result<Tally, String> {
        if text.len() > MAX_SCRAPE_BYTES {
            return Err(format!(
                "the metrics are {} bytes; at most {} MiB is read",
                text.len(),
                MAX_SCRAPE_BYTES >> 20
            ));
        }
        let bucket_name = selector.histogram.map(|h| format!("{h}_bucket"));
        let mut tally = Tally::default();
        // Buckets by series (its labels other than `le`), so series with different
        // bounds can be told apart before they are summed.
        let mut series: BTreeMap<Vec<(&str, Cow<'_, str>)>, Vec<Bucket>> = BTreeMap::new();
        for (index, raw) in text.split('\n').enumerate() {
            let n = index + 1;
            if raw.len() > MAX_LINE_BYTES {
                return Err(format!(
                    "line {n} is longer than {} KiB",
                    MAX_LINE_BYTES >> 10
                ));
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
            let name = &line[..name_end];
            // An empty name (a misconfiguration) must not match Prometheus 3's quoted names.
            let is_requests = !name.is_empty() && name == selector.requests;
            if !is_requests && bucket_name.as_deref() != Some(name) {
                continue;
            }
            let bad = |what: String| format!("line {n} `{}`: {what}", shorten(line));
            let (labels, value) = sample(&line[name_end..]).map_err(bad)?;
            if !value.is_finite() || value < 0.0 {
                return Err(bad(format!(
                    "the value {value} is not a count (a finite number, at least 0)"
                )));
            }
            if is_requests {
                tally.requests += value;
                let label = labels
                    .iter()
                    .find(|(k, _)| *k == selector.errors.label())
                    .map(|(_, v)| v.as_ref());
                if selector.errors.matches(label) {
                    tally.errors += value;
                }
                continue;
            }
            let mut le = None;
            let mut key = Vec::with_capacity(labels.len());
            for (k, v) in labels {
                if k == "le" {
                    le = Some(v);
                } else {
                    key.push((k, v));
                }
            }
            let le = le.ok_or_else(|| bad("a bucket without an le label".to_string()))?;
            let le = parse_le(&le).map_err(bad)?;
            key.sort();
            let buckets = series.entry(key).or_default();
            if buckets.iter().any(|b| b.le == le) {
                return Err(bad(format!("a second bucket le=\"{}\"", le_string(le))));
            }
            if buckets.len() >= MAX_BUCKETS {
                return Err(bad(format!(
                    "more than {MAX_BUCKETS} buckets in one series"
                )));
            }
            buckets.push(Bucket { le, count: value });
        }
        for (key, mut buckets) in series {
            buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
            if buckets.last().map(|b| b.le) != Some(f64::INFINITY) {
                let labels: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                return Err(format!(
                    "histogram {}{{{}}} has no le=\"+Inf\" bucket",
                    selector.histogram.unwrap_or_default(),
                    shorten(&labels.join(","))
                ));
            }
            tally.buckets = merge(&tally.buckets, &buckets);
        }
        if !tally.is_valid() {
            return Err("the counts add up to more than a number holds".to_string());
        }
        Ok(tally)
    }

    /// Adds another pod's tally: the sums of a side.
    ///
    /// Buckets are matched by bound. Pods exposing no histogram add nothing to it; where
    /// pods' bounds differ only the bounds all of them have are kept, as a sum at a bound
    /// some pods lack would undercount. Sums too large for an `f64` make the tally
    /// invalid (see [`Tally::is_valid`]), never a panic.
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.buckets = merge(&self.buckets, &other.buckets);
    }

    /// What was served since `baseline` (the same side's sums at the step's first
    /// scrape): `None` when a counter went down, i.e. a pod restarted or left and the
    /// baseline must be retaken. Also `None` when either tally is invalid, when more
    /// errors than requests were added (the non-error requests went down), or when the
    /// histogram is gone while the baseline had observations.
    pub fn since(&self, baseline: &Tally) -> Option<Tally> {
        if !self.is_valid() || !baseline.is_valid() {
            return None;
        }
        let requests = self.requests - baseline.requests;
        let errors = self.errors - baseline.errors;
        // Both valid, so these are finite numbers.
        if requests < 0.0 || errors < 0.0 || errors > requests {
            return None;
        }
        let buckets = if baseline.buckets.is_empty() {
            sorted(&self.buckets)
        } else if self.buckets.is_empty() {
            if baseline.buckets.iter().any(|b| b.count > 0.0) {
                return None;
            }
            Vec::new()
        } else {
            let mut delta = Vec::new();
            for (le, now, then) in join(&self.buckets, &baseline.buckets) {
                let count = now - then;
                if count < 0.0 {
                    return None;
                }
                delta.push(Bucket { le, count });
            }
            delta
        };
        Some(Tally {
            requests,
            errors,
            buckets,
        })
    }

    /// Whether every count is a finite number ≥ 0, with no more errors than requests and
    /// no NaN or −∞ bound: what a scrape can honestly give, and what JSON can hold.
    pub fn is_valid(&self) -> bool {
        let count = |x: f64| x.is_finite() && x >= 0.0;
        count(self.requests)
            && count(self.errors)
            && self.errors <= self.requests
            && self
                .buckets
                .iter()
                .all(|b| count(b.count) && !b.le.is_nan() && b.le != f64::NEG_INFINITY)
    }
}

/// A sample's labels: names and (unescaped) values, in the order written.
type Labels<'t> = Vec<(&'t str, Cow<'t, str>)>;

/// The labels and value of a sample line after its metric name (`{…} value [timestamp]`).
/// What follows the value (a timestamp, an OpenMetrics exemplar) is ignored.
fn sample(rest: &str) -> Result<(Labels<'_>, f64), String> {
    const WS: [char; 2] = [' ', '\t'];
    let mut labels = Vec::new();
    let mut s = rest;
    if let Some(inner) = s.strip_prefix('{') {
        let mut r = inner;
        loop {
            r = r.trim_start_matches(WS);
            if let Some(after) = r.strip_prefix('}') {
                s = after;
                break;
            }
            let name_len = r
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if name_len == 0 {
                return Err("expected a label name or }".to_string());
            }
            let name = &r[..name_len];
            r = r[name_len..].trim_start_matches(WS);
            r = r
                .strip_prefix('=')
                .ok_or_else(|| format!("expected = after the label name {name}"))?
                .trim_start_matches(WS);
            r = r
                .strip_prefix('"')
                .ok_or_else(|| format!("expected the value of label {name} in double quotes"))?;
            let (value, after) = label_value(r)
                .ok_or_else(|| format!("the value of label {name} has no closing quote"))?;
            labels.push((name, value));
            r = after.trim_start_matches(WS);
            if let Some(after) = r.strip_prefix(',') {
                r = after;
            } else if !r.starts_with('}') {
                return Err(format!("expected , or }} after the value of label {name}"));
            }
        }
    }
    let text = s
        .split_ascii_whitespace()
        .next()
        .ok_or("the sample has no value")?;
    let value = text
        .parse::<f64>()
        .map_err(|_| format!("the value {} is not a number", shorten(text)))?;
    Ok((labels, value))
}

/// A label value after its opening quote, unescaped (`\\`, `\"`, `\n`; another escape is
/// kept as written), and the text after its closing quote. Borrowed when it has no escape.
fn label_value(r: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut owned: Option<String> = None;
    let mut start = 0;
    let mut chars = r.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = match owned {
                    Some(mut s) => {
                        s.push_str(&r[start..i]);
                        Cow::Owned(s)
                    }
                    None => Cow::Borrowed(&r[..i]),
                };
                return Some((value, &r[i + 1..]));
            }
            '\\' => {
                let s = owned.get_or_insert_with(String::new);
                s.push_str(&r[start..i]);
                let (j, escaped) = chars.next()?;
                match escaped {
                    'n' => s.push('\n'),
                    '\\' | '"' => s.push(escaped),
                    other => {
                        s.push('\\');
                        s.push(other);
                    }
                }
                start = j + escaped.len_utf8();
            }
            _ => {}
        }
    }
    None
}

/// The buckets sorted by bound.
fn sorted(buckets: &[Bucket]) -> Vec<Bucket> {
    let mut out = buckets.to_vec();
    out.sort_by(|a, b| a.le.total_cmp(&b.le));
    out
}

/// The bounds both have, in order, with the count of each there: a sorted merge join,
/// as the inputs may be long when they come from a status someone edited.
fn join(a: &[Bucket], b: &[Bucket]) -> Vec<(f64, f64, f64)> {
    let (a, b) = (sorted(a), sorted(b));
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.le.total_cmp(&y.le) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                out.push((x.le, x.count, y.count));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Buckets summed by bound: an empty side (no histogram) adds nothing; otherwise only
/// the bounds both have are kept.
fn merge(a: &[Bucket], b: &[Bucket]) -> Vec<Bucket> {
    if a.is_empty() {
        return sorted(b);
    }
    if b.is_empty() {
        return sorted(a);
    }
    join(a, b)
        .into_iter()
        .map(|(le, x, y)| Bucket { le, count: x + y })
        .collect()
}

/// The `q`-quantile (0 ≤ q ≤ 1) of a histogram, as PromQL's `histogram_quantile` computes
/// it from classic buckets: the bucket holding the rank is found and the value
/// interpolated linearly within it (from 0 for the first bucket, unless its bound is ≤ 0,
/// then that bound); a rank in the `+Inf` bucket gives the highest finite bound.
///
/// `None` (where Prometheus answers NaN or ±Inf) without observations, without a `+Inf`
/// bucket or another bucket, for a `q` outside 0..=1, and for NaN or negative counts.
/// Counts that go down from one bound to the next are raised to the previous one, as
/// Prometheus does.
pub fn quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    if !(0.0..=1.0).contains(&q)
        || buckets.iter().any(|b| {
            b.le.is_nan() || b.le == f64::NEG_INFINITY || b.count.is_nan() || b.count < 0.0
        })
    {
        return None;
    }
    // Sorted, one bucket per bound, cumulative counts never going down.
    let mut cumulative: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in sorted(buckets) {
        match cumulative.last_mut() {
            Some(last) if last.le == b.le => last.count += b.count,
            _ => cumulative.push(b),
        }
    }
    let mut highest = 0.0_f64;
    for b in &mut cumulative {
        highest = highest.max(b.count);
        b.count = highest;
    }
    let last = cumulative.last()?;
    if last.le != f64::INFINITY || cumulative.len() < 2 {
        return None;
    }
    let observations = last.count;
    if observations <= 0.0 || !observations.is_finite() {
        return None;
    }
    let mut rank = q * observations;
    let finite = &cumulative[..cumulative.len() - 1];
    let b = finite.partition_point(|x| x.count < rank);
    if b == finite.len() {
        return Some(finite[b - 1].le);
    }
    if b == 0 && finite[0].le <= 0.0 {
        return Some(finite[0].le);
    }
    let end = finite[b].le;
    let mut count = finite[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = finite[b - 1].le;
        count -= finite[b - 1].count;
        rank -= finite[b - 1].count;
    }
    if count <= 0.0 {
        // Only with a rank of 0 (q = 0) in an empty first bucket.
        return Some(start);
    }
    Some(start + (end - start) * (rank / count)).filter(|v| v.is_finite())
}

/// What the canary may do worse than the stable pods.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// How many percentage points the canary's error ratio may exceed the stable one's
    /// (1.0: 0.4% stable allows up to 1.4%). NaN counts as 0.
    pub max_error_increase_percent: f64,
    /// Canary requests since the step began before judging: a few requests say nothing.
    /// At least one is always needed (with none there is no ratio to compare).
    pub min_requests: u64,
    pub latency: Option<LatencyLimit>,
}

/// How much slower the canary may be at a quantile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyLimit {
    /// e.g. 0.99 for p99.
    pub quantile: f64,
    /// The canary's quantile may exceed the stable one's by this many milliseconds. NaN
    /// counts as 0.
    pub max_increase_ms: f64,
}

/// The gate's answer for a step, with the text for the status.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not enough canary traffic yet (or no valid counts): judge again after the next
    /// scrape.
    Wait(String),
    /// Within the limits; the summary for the status message.
    Pass(String),
    /// The cause, for the rollback's condition.
    Fail(String),
}

impl Verdict {
    /// The text, whatever the answer.
    pub fn message(&self) -> &str {
        match self {
            Verdict::Wait(m) | Verdict::Pass(m) | Verdict::Fail(m) => m,
        }
    }
}

/// Judges the canary's traffic since the step began against the stable pods' over the
/// same time (both [`Tally::since`] their baselines).
///
/// Waits until the canary served `min_requests` (at least one). Then the error ratios
/// (errors/requests; a stable side without requests counts as 0%) are compared first,
/// then, when a latency limit is set and both sides have observations, the quantiles.
/// An invalid tally (NaN, negative, infinite) waits: it never passes.
pub fn judge(canary: &Tally, stable: &Tally, limits: &Limits) -> Verdict {
    if !canary.is_valid() || !stable.is_valid() {
        return Verdict::Wait(
            "gate metrics: the counts are not valid numbers; waiting for a new baseline"
                .to_string(),
        );
    }
    let needed = limits.min_requests.max(1);
    // Counters are whole numbers; a fraction is shown rounded down.
    let requests = canary.requests.floor() as u64;
    if canary.requests < needed as f64 {
        return Verdict::Wait(format!(
            "gate metrics: {requests}/{needed} canary requests so far"
        ));
    }
    let canary_percent = 100.0 * canary.errors / canary.requests;
    let stable_percent = if stable.requests > 0.0 {
        100.0 * stable.errors / stable.requests
    } else {
        0.0
    };
    let max = or_zero(limits.max_error_increase_percent);
    let errors = format!(
        "canary {canary_percent:.1}% errors vs stable {stable_percent:.1}% (max {}%)",
        signed(max)
    );
    if canary_percent - stable_percent > max + EPSILON {
        return Verdict::Fail(format!("gate metrics: {errors} over {requests} requests"));
    }
    let mut summary = errors;
    if let Some(latency) = &limits.latency {
        let label = quantile_label(latency.quantile);
        match (
            quantile(latency.quantile, &canary.buckets),
            quantile(latency.quantile, &stable.buckets),
        ) {
            (Some(canary_s), Some(stable_s)) => {
                let (canary_ms, stable_ms) = (canary_s * 1000.0, stable_s * 1000.0);
                let max = or_zero(latency.max_increase_ms);
                let text = format!(
                    "{label} {} ms vs stable {} ms (max {} ms)",
                    milliseconds(canary_ms),
                    milliseconds(stable_ms),
                    signed(max)
                );
                if canary_ms - stable_ms > max + EPSILON {
                    return Verdict::Fail(format!(
                        "gate metrics: canary {text} over {requests} requests"
                    ));
                }
                summary = format!("{summary}, {text}");
            }
            (canary_q, _) => {
                let side = if canary_q.is_none() {
                    "canary"
                } else {
                    "stable"
                };
                summary = format!(
                    "{summary}, {label} not compared (no latency observations on the {side} pods)"
                );
            }
        }
    }
    Verdict::Pass(format!("gate metrics: {summary} over {requests} requests"))
}

/// A limit that is NaN is no slack at all.
fn or_zero(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

/// `x` with at most three decimals and none needless: 1 → "1", 0.5 → "0.5".
fn plain(x: f64) -> String {
    let text = format!("{x:.3}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A limit with its sign: "+1", "+0.5".
fn signed(x: f64) -> String {
    if x < 0.0 {
        format!("-{}", plain(-x))
    } else {
        format!("+{}", plain(x))
    }
}

/// Milliseconds as people read them: whole from 10 ms, else to a tenth.
fn milliseconds(ms: f64) -> String {
    if ms.abs() >= 10.0 {
        format!("{ms:.0}")
    } else {
        let text = format!("{ms:.1}");
        text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
    }
}

/// The usual name of a quantile: 0.99 → p99, 0.5 → p50, 0.999 → p999.
fn quantile_label(q: f64) -> String {
    if q == 1.0 {
        return "p100".to_string();
    }
    let text = q.to_string();
    match text.strip_prefix("0.") {
        Some(digits) if q > 0.0 && digits.len() <= 6 => {
            if digits.len() == 1 {
                format!("p{digits}0")
            } else {
                format!("p{digits}")
            }
        }
        _ => format!("q{}", plain(q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The testapp's `/metrics` (e2e/testapp/src/metrics.rs `render`) after 400 requests,
    /// 20 of them answered 500.
    const TESTAPP: &str = "\
# HELP testapp_http_requests_total Requests answered, by status code.
# TYPE testapp_http_requests_total counter
testapp_http_requests_total{code=\"200\"} 380
testapp_http_requests_total{code=\"500\"} 20
# HELP testapp_http_request_duration_seconds Time to answer.
# TYPE testapp_http_request_duration_seconds histogram
testapp_http_request_duration_seconds_bucket{le=\"0.005\"} 300
testapp_http_request_duration_seconds_bucket{le=\"0.01\"} 360
testapp_http_request_duration_seconds_bucket{le=\"0.025\"} 380
testapp_http_request_duration_seconds_bucket{le=\"0.05\"} 390
testapp_http_request_duration_seconds_bucket{le=\"0.1\"} 395
testapp_http_request_duration_seconds_bucket{le=\"0.25\"} 398
testapp_http_request_duration_seconds_bucket{le=\"0.5\"} 400
testapp_http_request_duration_seconds_bucket{le=\"1\"} 400
testapp_http_request_duration_seconds_bucket{le=\"2.5\"} 400
testapp_http_request_duration_seconds_bucket{le=\"5\"} 400
testapp_http_request_duration_seconds_bucket{le=\"10\"} 400
testapp_http_request_duration_seconds_bucket{le=\"+Inf\"} 400
testapp_http_request_duration_seconds_sum 3.2
testapp_http_request_duration_seconds_count 400
";

    fn five_xx() -> LabelMatch {
        LabelMatch::parse(r#"code=~"5..""#).unwrap()
    }

    fn read(text: &str, errors: &LabelMatch) -> Result<Tally, String> {
        Tally::read(
            text,
            &Selector {
                requests: "testapp_http_requests_total",
                errors,
                histogram: Some("testapp_http_request_duration_seconds"),
            },
        )
    }

    fn bucket(le: f64, count: f64) -> Bucket {
        Bucket { le, count }
    }

    fn tally(requests: f64, errors: f64, buckets: &[(f64, f64)]) -> Tally {
        Tally {
            requests,
            errors,
            buckets: buckets.iter().map(|&(le, c)| bucket(le, c)).collect(),
        }
    }

    fn limits(max: f64, min_requests: u64) -> Limits {
        Limits {
            max_error_increase_percent: max,
            min_requests,
            latency: None,
        }
    }

    #[test]
    fn reads_the_testapps_format() {
        let t = read(TESTAPP, &five_xx()).unwrap();
        assert_eq!(t.requests, 380.0 + 20.0);
        assert_eq!(t.errors, 20.0);
        let bounds: Vec<f64> = t.buckets.iter().map(|b| b.le).collect();
        assert_eq!(
            bounds,
            [
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1.0,
                2.5,
                5.0,
                10.0,
                f64::INFINITY
            ]
        );
        assert_eq!(t.buckets[0].count, 300.0);
        assert_eq!(t.buckets[11].count, 400.0);
        // Without a histogram configured, no buckets.
        let m = five_xx();
        let selector = Selector {
            requests: "testapp_http_requests_total",
            errors: &m,
            histogram: None,
        };
        assert!(Tally::read(TESTAPP, &selector).unwrap().buckets.is_empty());
    }

    #[test]
    fn label_values_with_escapes_commas_and_braces() {
        let text = concat!(
            r#"app_requests_total{path="/a,b",msg="say \"hi\", ok\\",code="503"} 7"#,
            "\r\n",
            r#"app_requests_total{ path = "{x}" , code="200", } 3 1700000000000"#,
            "\n",
            r#"app_requests_total{code="5\n00"} 1"#,
            "\napp_requests_total 2\n",
        );
        let m = LabelMatch::parse(r#"msg="say \"hi\", ok\\""#).unwrap();
        let selector = Selector {
            requests: "app_requests_total",
            errors: &m,
            histogram: None,
        };
        let t = Tally::read(text, &selector).unwrap();
        assert_eq!((t.requests, t.errors), (13.0, 7.0));
        let m = five_xx();
        let t = Tally::read(
            text,
            &Selector {
                errors: &m,
                ..selector
            },
        )
        .unwrap();
        // "5\n00" is not three characters; the series without a code does not match.
        assert_eq!((t.requests, t.errors), (13.0, 7.0));
        let m = LabelMatch::parse(r#"code!="200""#).unwrap();
        let t = Tally::read(
            text,
            &Selector {
                errors: &m,
                ..selector
            },
        )
        .unwrap();
        assert_eq!(t.errors, 7.0 + 1.0 + 2.0);
    }

    #[test]
    fn other_metrics_comments_and_odd_values_are_ignored() {
        let text = "\
testapp_http_requests_total_created{code=\"500\"} 1.7e9
testapp_http_requests_totally{code=\"500\"} 9
other_total{code=\"500\"} 99
go_gc_duration_seconds{quantile=\"0.5\"} NaN
weird line without a value {{{
   # indented comment
testapp_http_requests_total{code=\"500\"} 1e1 # {trace_id=\"abc\"} 1.0
testapp_http_requests_total{code=\"200\"} +5
";
        let t = read(text, &five_xx()).unwrap();
        assert_eq!((t.requests, t.errors), (15.0, 10.0));
        assert!(t.buckets.is_empty());
    }

    #[test]
    fn a_missing_metric_is_zero_requests() {
        assert_eq!(read("", &five_xx()).unwrap(), Tally::default());
        assert_eq!(
            read(
                "# nothing served yet\nprocess_cpu_seconds_total 0.1\n",
                &five_xx()
            )
            .unwrap(),
            Tally::default()
        );
    }

    #[test]
    fn oversize_input_and_lines_are_refused() {
        let big = "#".repeat(MAX_SCRAPE_BYTES + 1);
        assert!(
            read(&big, &five_xx())
                .unwrap_err()
                .contains("at most 4 MiB")
        );
        let long = format!(
            "testapp_http_requests_total{{code=\"200\"}} 1\n# {}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        assert_eq!(
            read(&long, &five_xx()).unwrap_err(),
            "line 2 is longer than 64 KiB"
        );
    }

    #[test]
    fn malformed_lines_of_read_metrics_are_refused_with_their_number() {
        for (text, expected) in [
            (
                "testapp_http_requests_total{code=\"200} 5",
                "no closing quote",
            ),
            (
                "testapp_http_requests_total{code=200} 5",
                "in double quotes",
            ),
            ("testapp_http_requests_total{code=\"200\"}", "no value"),
            (
                "testapp_http_requests_total{code=\"200\" x} 1",
                "expected ,",
            ),
            ("testapp_http_requests_total five", "not a number"),
            ("testapp_http_requests_total NaN", "not a count"),
            ("testapp_http_requests_total +Inf", "not a count"),
            ("testapp_http_requests_total -1", "not a count"),
            (
                "testapp_http_request_duration_seconds_bucket 1",
                "without an le",
            ),
            (
                "testapp_http_request_duration_seconds_bucket{le=\"NaN\"} 1",
                "not a bucket bound",
            ),
        ] {
            let err = read(&format!("# ok\n{text}\n"), &five_xx()).unwrap_err();
            assert!(err.starts_with("line 2 `testapp_"), "{text}: {err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
        let twice = "testapp_http_request_duration_seconds_bucket{le=\"1\"} 1\n\
                     testapp_http_request_duration_seconds_bucket{le=\"1.0\"} 1\n";
        let err = read(twice, &five_xx()).unwrap_err();
        assert!(
            err.starts_with("line 2 `") && err.ends_with("a second bucket le=\"1\""),
            "{err}"
        );
        let err = read(
            "testapp_http_request_duration_seconds_bucket{le=\"1\",code=\"200\"} 1\n",
            &five_xx(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "histogram testapp_http_request_duration_seconds{code=\"200\"} has no le=\"+Inf\" bucket"
        );
        let many: String = (0..=MAX_BUCKETS)
            .map(|i| format!("testapp_http_request_duration_seconds_bucket{{le=\"{i}\"}} 1\n"))
            .collect();
        assert!(
            read(&many, &five_xx())
                .unwrap_err()
                .contains("more than 128 buckets")
        );
        let huge = "testapp_http_requests_total{code=\"1\"} 1e308\n\
                    testapp_http_requests_total{code=\"2\"} 1e308\n";
        assert!(
            read(huge, &five_xx())
                .unwrap_err()
                .contains("more than a number holds")
        );
    }

    #[test]
    fn a_labelled_histogram_is_summed_by_bound() {
        let text = "\
testapp_http_request_duration_seconds_bucket{code=\"200\",le=\"0.1\"} 8
testapp_http_request_duration_seconds_bucket{code=\"200\",le=\"1\"} 9
testapp_http_request_duration_seconds_bucket{code=\"200\",le=\"+Inf\"} 10
testapp_http_request_duration_seconds_bucket{le=\"+Inf\",code=\"500\"} 4
testapp_http_request_duration_seconds_bucket{le=\"1e-1\",code=\"500\"} 1
testapp_http_request_duration_seconds_bucket{le=\"0.5\",code=\"500\"} 2
";
        let t = read(text, &five_xx()).unwrap();
        // Bound 1 and 0.5 are in one series only: a sum there would undercount.
        assert_eq!(t.buckets, [bucket(0.1, 9.0), bucket(f64::INFINITY, 14.0)]);
    }

    #[test]
    fn label_matchers_parse_as_in_promql() {
        let m = five_xx();
        assert_eq!(
            (m.label(), m.op(), m.value()),
            ("code", MatchOp::Regex, "5..")
        );
        assert!(m.matches(Some("503")));
        // Anchored: the whole value.
        for value in [Some("5000"), Some("1500"), Some("50"), Some(""), None] {
            assert!(!m.matches(value), "{value:?}");
        }
        let m = LabelMatch::parse(r#" status = "error" "#).unwrap();
        assert_eq!(m.op(), MatchOp::Eq);
        assert!(m.matches(Some("error")) && !m.matches(Some("errors")));
        let m = LabelMatch::parse(r#"code!="200""#).unwrap();
        assert!(m.matches(None) && m.matches(Some("500")) && !m.matches(Some("200")));
        let m = LabelMatch::parse(r#"code!~'2..|3..'"#).unwrap();
        assert_eq!(m.op(), MatchOp::NotRegex);
        assert!(m.matches(Some("404")) && !m.matches(Some("302")));
        let m = LabelMatch::parse(r#"code=~"5\d\d""#).unwrap();
        assert!(m.matches(Some("504")) && !m.matches(Some("5x4")));
        let m = LabelMatch::parse(r"code=~`5\d\d`").unwrap();
        assert!(m.matches(Some("504")));
        let m = LabelMatch::parse(r#"msg=~"a.b""#).unwrap();
        assert!(m.matches(Some("a\nb")));
        // Displayed back in PromQL syntax.
        let m = LabelMatch::parse(r#"msg="say \"hi\"""#).unwrap();
        assert_eq!(m.to_string(), r#"msg="say \"hi\"""#);
        assert_eq!(LabelMatch::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn bad_label_matchers_are_named_with_what_is_expected() {
        for (text, what) in [
            ("", "start with a label name"),
            ("5code=\"x\"", "start with a label name"),
            ("=~\"5..\"", "start with a label name"),
            ("code", "followed by =, !=, =~ or !~"),
            ("code ~ \"5\"", "followed by =, !=, =~ or !~"),
            ("code=", "must be quoted"),
            ("code=~5..", "must be quoted"),
            ("code=\"5", "no closing quote"),
            ("code=`5", "no closing backtick"),
            ("code=\"5\" and more", "text after the closing quote"),
            ("code=~\"(5\"", "not a valid regular expression"),
            ("code=~\"a)|(b\"", "not a valid regular expression"),
        ] {
            let err = LabelMatch::parse(text).unwrap_err();
            assert!(
                err.starts_with(&format!("label matcher `{text}`: ")) && err.contains(what),
                "{text}: {err}"
            );
            assert!(err.contains("expected label=\"value\""), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn sums_over_pods_match_buckets_by_bound() {
        let mut side = Tally::default();
        side.add(&tally(10.0, 1.0, &[(0.1, 5.0), (f64::INFINITY, 10.0)]));
        // Another order, and a pod without the histogram.
        side.add(&tally(20.0, 2.0, &[(f64::INFINITY, 20.0), (0.1, 15.0)]));
        side.add(&tally(3.0, 0.0, &[]));
        assert_eq!(
            side,
            tally(33.0, 3.0, &[(0.1, 20.0), (f64::INFINITY, 30.0)])
        );
        // A pod with other bounds: only the common ones stay.
        side.add(&tally(1.0, 0.0, &[(0.5, 1.0), (f64::INFINITY, 1.0)]));
        assert_eq!(side.buckets, [bucket(f64::INFINITY, 31.0)]);
    }

    #[test]
    fn deltas_since_the_baseline_and_resets() {
        let baseline = tally(100.0, 5.0, &[(0.1, 80.0), (f64::INFINITY, 100.0)]);
        let now = tally(150.0, 6.0, &[(0.1, 120.0), (f64::INFINITY, 150.0)]);
        assert_eq!(
            now.since(&baseline),
            Some(tally(50.0, 1.0, &[(0.1, 40.0), (f64::INFINITY, 50.0)]))
        );
        assert_eq!(
            now.since(&now),
            Some(tally(0.0, 0.0, &[(0.1, 0.0), (f64::INFINITY, 0.0)]))
        );
        // Requests went down: a pod restarted or left.
        assert_eq!(tally(90.0, 5.0, &[]).since(&tally(100.0, 5.0, &[])), None);
        // Errors went down.
        assert_eq!(tally(120.0, 4.0, &[]).since(&tally(100.0, 5.0, &[])), None);
        // More new errors than new requests: the non-errors went down.
        assert_eq!(tally(101.0, 10.0, &[]).since(&tally(100.0, 5.0, &[])), None);
        // A bucket went down.
        let fewer = tally(150.0, 6.0, &[(0.1, 70.0), (f64::INFINITY, 150.0)]);
        assert_eq!(fewer.since(&baseline), None);
        // The histogram is gone though the baseline had observations.
        assert_eq!(tally(150.0, 6.0, &[]).since(&baseline), None);
        // No histogram at the baseline: everything observed is new.
        assert_eq!(
            now.since(&tally(100.0, 5.0, &[])).unwrap().buckets,
            now.buckets
        );
        // Invalid numbers are no delta.
        assert_eq!(tally(f64::NAN, 0.0, &[]).since(&Tally::default()), None);
        assert_eq!(Tally::default().since(&tally(f64::NAN, 0.0, &[])), None);
        assert_eq!(
            tally(f64::INFINITY, 0.0, &[]).since(&Tally::default()),
            None
        );
        assert_eq!(
            tally(5.0, 0.0, &[(f64::NAN, 1.0)]).since(&Tally::default()),
            None
        );
    }

    #[test]
    fn quantiles_as_prometheus_computes_them() {
        let b = [
            bucket(0.1, 10.0),
            bucket(0.5, 30.0),
            bucket(1.0, 40.0),
            bucket(f64::INFINITY, 40.0),
        ];
        let close = |q: f64, expected: f64| {
            let got = quantile(q, &b).unwrap();
            assert!((got - expected).abs() < 1e-12, "q={q}: {got} vs {expected}");
        };
        // rank 20 in (0.1, 0.5]: 0.1 + 0.4 × (10/20).
        close(0.5, 0.3);
        // rank 39.6 in (0.5, 1]: 0.5 + 0.5 × (9.6/10).
        close(0.99, 0.98);
        // rank 10 in (0, 0.1]: the whole first bucket.
        close(0.25, 0.1);
        // rank 4 in the first bucket, from 0.
        close(0.1, 0.04);
        close(1.0, 1.0);
        // Order does not matter.
        let mut shuffled = b;
        shuffled.reverse();
        assert_eq!(quantile(0.5, &shuffled), quantile(0.5, &b));
        // A rank in the +Inf bucket: the highest finite bound.
        let tail = [
            bucket(0.1, 10.0),
            bucket(0.5, 20.0),
            bucket(f64::INFINITY, 40.0),
        ];
        assert_eq!(quantile(0.9, &tail), Some(0.5));
        // The testapp's buckets: rank 396 of 400 in (0.1, 0.25]: 0.1 + 0.15 × (1/3).
        let t = read(TESTAPP, &five_xx()).unwrap();
        let p99 = quantile(0.99, &t.buckets).unwrap();
        assert!((p99 - 0.15).abs() < 1e-12, "{p99}");
        // Counts that go down are raised: as 10, 10, 20, 20.
        let bumpy = [
            bucket(0.1, 10.0),
            bucket(0.5, 5.0),
            bucket(1.0, 20.0),
            bucket(f64::INFINITY, 20.0),
        ];
        assert_eq!(quantile(0.5, &bumpy), Some(0.1));
        // A first bound ≤ 0 is returned as is.
        let negative = [
            bucket(-1.0, 5.0),
            bucket(0.0, 10.0),
            bucket(f64::INFINITY, 10.0),
        ];
        assert_eq!(quantile(0.25, &negative), Some(-1.0));
        // No answer: no observations, only +Inf, no +Inf, no buckets, bad q or counts.
        assert_eq!(
            quantile(0.5, &[bucket(0.1, 0.0), bucket(f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(quantile(0.5, &[bucket(f64::INFINITY, 5.0)]), None);
        assert_eq!(quantile(0.5, &[bucket(0.1, 5.0), bucket(1.0, 5.0)]), None);
        assert_eq!(quantile(0.5, &[]), None);
        for q in [f64::NAN, -0.1, 1.5] {
            assert_eq!(quantile(q, &b), None);
        }
        assert_eq!(
            quantile(0.5, &[bucket(0.1, f64::NAN), bucket(f64::INFINITY, 5.0)]),
            None
        );
        assert_eq!(
            quantile(0.5, &[bucket(0.1, -1.0), bucket(f64::INFINITY, 5.0)]),
            None
        );
    }

    #[test]
    fn a_canary_with_more_errors_fails_with_the_cause() {
        let stable = tally(1000.0, 0.0, &[]);
        assert_eq!(
            judge(&tally(500.0, 100.0, &[]), &stable, &limits(1.0, 100)),
            Verdict::Fail(
                "gate metrics: canary 20.0% errors vs stable 0.0% (max +1%) over 500 requests"
                    .to_string()
            )
        );
        assert_eq!(
            judge(
                &tally(1000.0, 210.0, &[]),
                &tally(1000.0, 4.0, &[]),
                &limits(0.5, 100)
            )
            .message(),
            "gate metrics: canary 21.0% errors vs stable 0.4% (max +0.5%) over 1000 requests"
        );
    }

    #[test]
    fn a_canary_as_good_as_stable_passes() {
        let verdict = judge(
            &tally(500.0, 0.0, &[]),
            &tally(1000.0, 0.0, &[]),
            &limits(1.0, 100),
        );
        assert_eq!(
            verdict,
            Verdict::Pass(
                "gate metrics: canary 0.0% errors vs stable 0.0% (max +1%) over 500 requests"
                    .to_string()
            )
        );
        // Exactly the allowed increase passes, floating point notwithstanding.
        assert!(matches!(
            judge(
                &tally(1000.0, 11.0, &[]),
                &tally(1000.0, 1.0, &[]),
                &limits(1.0, 100)
            ),
            Verdict::Pass(_)
        ));
        // A stable side without requests counts as 0% errors.
        assert!(matches!(
            judge(
                &tally(200.0, 1.0, &[]),
                &Tally::default(),
                &limits(1.0, 100)
            ),
            Verdict::Pass(_)
        ));
        assert!(matches!(
            judge(
                &tally(200.0, 3.0, &[]),
                &Tally::default(),
                &limits(1.0, 100)
            ),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn too_few_canary_requests_wait() {
        assert_eq!(
            judge(
                &tally(37.0, 37.0, &[]),
                &Tally::default(),
                &limits(1.0, 100)
            ),
            Verdict::Wait("gate metrics: 37/100 canary requests so far".to_string())
        );
        assert_eq!(
            judge(&tally(99.5, 0.0, &[]), &Tally::default(), &limits(1.0, 100)).message(),
            "gate metrics: 99/100 canary requests so far"
        );
        // With no minimum, still one request: no traffic is no evidence.
        assert_eq!(
            judge(&Tally::default(), &Tally::default(), &limits(1.0, 0)),
            Verdict::Wait("gate metrics: 0/1 canary requests so far".to_string())
        );
    }

    #[test]
    fn a_slower_canary_fails_on_latency() {
        let fast = [(0.01, 900.0), (0.02, 1000.0), (f64::INFINITY, 1000.0)];
        let slow = [
            (0.01, 100.0),
            (0.1, 300.0),
            (0.5, 400.0),
            (f64::INFINITY, 412.0),
        ];
        let mut l = limits(1.0, 100);
        l.latency = Some(LatencyLimit {
            quantile: 0.99,
            max_increase_ms: 100.0,
        });
        let stable = tally(1000.0, 0.0, &fast);
        // Canary p99: rank 407.88 is in +Inf: 500 ms. Stable: rank 990 in (10, 20] ms:
        // 10 + 10 × 90/100 = 19 ms.
        assert_eq!(
            judge(&tally(412.0, 0.0, &slow), &stable, &l),
            Verdict::Fail(
                "gate metrics: canary p99 500 ms vs stable 19 ms (max +100 ms) over 412 requests"
                    .to_string()
            )
        );
        // The errors are judged first.
        assert!(
            judge(&tally(412.0, 100.0, &slow), &stable, &l)
                .message()
                .contains("errors vs stable")
        );
        // As fast: a pass, the summary naming both.
        assert_eq!(
            judge(&tally(500.0, 0.0, &fast), &stable, &l),
            Verdict::Pass(
                "gate metrics: canary 0.0% errors vs stable 0.0% (max +1%), p99 19 ms vs stable \
                 19 ms (max +100 ms) over 500 requests"
                    .to_string()
            )
        );
        // Without observations on one side, latency is not compared.
        assert_eq!(
            judge(&tally(500.0, 0.0, &slow), &Tally::default(), &l).message(),
            "gate metrics: canary 0.0% errors vs stable 0.0% (max +1%), p99 not compared (no \
             latency observations on the stable pods) over 500 requests"
        );
    }

    #[test]
    fn invalid_tallies_never_pass() {
        for bad in [
            tally(f64::NAN, 0.0, &[]),
            tally(500.0, f64::NAN, &[]),
            tally(f64::INFINITY, 0.0, &[]),
            tally(-500.0, 0.0, &[]),
            tally(500.0, 600.0, &[]),
        ] {
            let l = limits(1.0, 100);
            assert!(matches!(
                judge(&bad, &Tally::default(), &l),
                Verdict::Wait(_)
            ));
            assert!(matches!(
                judge(&tally(500.0, 0.0, &[]), &bad, &l),
                Verdict::Wait(_)
            ));
        }
        // A NaN limit is no slack.
        assert!(matches!(
            judge(
                &tally(500.0, 1.0, &[]),
                &Tally::default(),
                &limits(f64::NAN, 100)
            ),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn numbers_in_messages() {
        assert_eq!(quantile_label(0.99), "p99");
        assert_eq!(quantile_label(0.95), "p95");
        assert_eq!(quantile_label(0.5), "p50");
        assert_eq!(quantile_label(0.999), "p999");
        assert_eq!(quantile_label(0.9), "p90");
        assert_eq!(quantile_label(1.0), "p100");
        assert_eq!(quantile_label(f64::NAN), "qNaN");
        assert_eq!(signed(1.0), "+1");
        assert_eq!(signed(0.5), "+0.5");
        assert_eq!(signed(0.25), "+0.25");
        assert_eq!(signed(-0.0), "+0");
        assert_eq!(milliseconds(310.2), "310");
        assert_eq!(milliseconds(2.54), "2.5");
        assert_eq!(milliseconds(5.0), "5");
    }

    #[test]
    fn a_tally_round_trips_through_json() {
        let t = tally(10.0, 1.0, &[(0.005, 3.0), (f64::INFINITY, 10.0)]);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "requests": 10.0,
                "errors": 1.0,
                "buckets": [{"le": "0.005", "count": 3.0}, {"le": "+Inf", "count": 10.0}],
            })
        );
        assert_eq!(serde_json::from_value::<Tally>(json).unwrap(), t);
        let empty = serde_json::to_value(Tally::default()).unwrap();
        assert_eq!(empty, serde_json::json!({"requests": 0.0, "errors": 0.0}));
        assert_eq!(
            serde_json::from_value::<Tally>(empty).unwrap(),
            Tally::default()
        );
        assert!(
            serde_json::from_value::<Bucket>(serde_json::json!({"le": "NaN", "count": 1.0}))
                .is_err()
        );
        let schema = serde_json::to_value(schemars::schema_for!(Bucket)).unwrap();
        assert_eq!(schema["properties"]["le"]["type"], "string");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Lines of the metrics read, with bits of the syntax in any order.
        const LINES: &str = concat!(
            r#"(testapp_http_request(s_total|_duration_seconds_bucket)"#,
            r#"([{}=",\\ a-z0-9.+-]|le|code|Inf|NaN){0,40}"#,
            "\n?){0,6}",
        );

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Any text: an answer or an error, never a panic; an answer is valid.
            #[test]
            fn reading_never_panics(text in LINES) {
                if let Ok(t) = read(&text, &five_xx()) {
                    prop_assert!(t.is_valid());
                }
            }

            /// Any numbers: never a panic, and a pass only from valid tallies.
            #[test]
            fn judging_never_panics(
                numbers in proptest::collection::vec(prop_oneof![any::<f64>(), 0.0..1000.0], 8),
                min in any::<u64>(),
            ) {
                let canary = tally(
                    numbers[0],
                    numbers[1],
                    &[(numbers[2], numbers[3]), (f64::INFINITY, numbers[3])],
                );
                let stable = tally(numbers[4], numbers[5], &[(numbers[2], numbers[6])]);
                let mut l = limits(numbers[7], min);
                l.latency = Some(LatencyLimit { quantile: 0.99, max_increase_ms: numbers[7] });
                let verdict = judge(&canary, &stable, &l);
                if matches!(verdict, Verdict::Pass(_)) {
                    prop_assert!(canary.is_valid() && stable.is_valid());
                }
                let _ = canary.since(&stable);
                let mut sum = canary.clone();
                sum.add(&stable);
                let _ = quantile(0.5, &sum.buckets);
            }
        }
    }
}
