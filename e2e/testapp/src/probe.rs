//! `testapp probe <url>`: a client calling one URL on a fixed cadence for as long as it
//! runs, counting failures and which `version` answered, for the zero-failed-request
//! scenarios of the end-to-end tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::http;

/// The tally printed every second.
#[derive(Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    pub versions: BTreeMap<String, u64>,
    pub window: BTreeMap<String, u64>,
    pub window_failed: u64,
    /// Failures whose answer named a version (an injected failure), by version.
    pub failed_versions: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one answer: a 2xx whose body names a version, or a failure.
    pub fn record(&mut self, answer: Result<String, String>) {
        match answer {
            Ok(version) => {
                self.ok += 1;
                *self.versions.entry(version.clone()).or_default() += 1;
                *self.window.entry(version).or_default() += 1;
            }
            Err(error) => {
                self.failed += 1;
                self.window_failed += 1;
                if let Some(version) = version_of(&error) {
                    *self.failed_versions.entry(version).or_default() += 1;
                }
            }
        }
    }

    /// The line for the second that ends now; the window starts again.
    pub fn line(&mut self) -> String {
        let counts = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let line = format!(
            "probe ok={} failed={} versions={} window={} window_failed={} failed_versions={}",
            self.ok,
            self.failed,
            counts(&self.versions),
            counts(&self.window),
            self.window_failed,
            counts(&self.failed_versions)
        );
        self.window.clear();
        self.window_failed = 0;
        line
    }
}

/// The `version` field of the testapp's `/` answer.
pub fn version_of(body: &str) -> Option<String> {
    let rest = &body[body.find("\"version\":\"")? + "\"version\":\"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// One request: the answering version, or why it failed.
fn once(url: &str) -> Result<String, String> {
    let response = http::get(url)?;
    let body = String::from_utf8_lossy(&response.body);
    if !(200..300).contains(&response.status) {
        return Err(format!("status {}: {}", response.status, body.trim_end()));
    }
    Ok(version_of(&body).unwrap_or_else(|| "unknown".to_string()))
}

pub fn run(url: &str) -> ! {
    let interval = Duration::from_millis(
        std::env::var("PROBE_INTERVAL_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(50),
    );
    let mut tally = Tally::default();
    let mut next_line = Instant::now() + Duration::from_secs(1);
    let mut stdout = std::io::stdout();
    loop {
        let started = Instant::now();
        let answer = once(url);
        if let Err(error) = &answer {
            let _ = writeln!(stdout, "probe failure: {error}");
        }
        tally.record(answer);
        if Instant::now() >= next_line {
            let _ = writeln!(stdout, "{}", tally.line());
            let _ = stdout.flush();
            next_line += Duration::from_secs(1);
        }
        if let Some(rest) = interval.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_of_an_answer() {
        assert_eq!(
            version_of("{\"service\":\"s\",\"version\":\"v2\",\"hostname\":\"h\"}").as_deref(),
            Some("v2")
        );
        assert_eq!(version_of("{}"), None);
    }

    #[test]
    fn lines_hold_totals_and_the_last_window() {
        let mut tally = Tally::default();
        tally.record(Ok("v1".into()));
        tally.record(Ok("v2".into()));
        tally.record(Err("refused".into()));
        tally.record(Err(
            "status 500: {\"error\":\"injected\",\"version\":\"v2\"}".into(),
        ));
        assert_eq!(
            tally.line(),
            "probe ok=2 failed=2 versions=v1:1,v2:1 window=v1:1,v2:1 window_failed=2 failed_versions=v2:1"
        );
        tally.record(Ok("v2".into()));
        assert_eq!(
            tally.line(),
            "probe ok=3 failed=2 versions=v1:1,v2:2 window=v2:1 window_failed=0 failed_versions=v2:1"
        );
    }
}
