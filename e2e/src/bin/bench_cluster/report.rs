//! The report: one row per figure, with its target and whether it was met, printed as a
//! table and written as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Clone, Copy, Serialize)]
#[serde(tag = "op", content = "value")]
pub enum Target {
    #[serde(rename = "<=")]
    AtMost(f64),
    #[serde(rename = "==")]
    Exactly(f64),
    /// A rule the row checks itself (it sets `pass`).
    #[serde(rename = "rule")]
    Rule(&'static str),
}

#[derive(Serialize)]
pub struct Row {
    section: &'static str,
    figure: String,
    /// None: not measured (the run failed before).
    value: Option<f64>,
    unit: &'static str,
    target: Option<Target>,
    pub pass: Option<bool>,
    note: String,
}

#[derive(Serialize, Default)]
pub struct Report {
    pub n: usize,
    pub started: String,
    pub duration_seconds: f64,
    pub machine: BTreeMap<String, String>,
    pub rows: Vec<Row>,
    /// What the audit log shows beyond children and statuses, edit samples and the like.
    pub details: BTreeMap<String, serde_json::Value>,
    pub error: Option<String>,
}

impl Report {
    pub fn row(
        &mut self,
        section: &'static str,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.push(section, figure, Some(value), unit, None, "");
    }

    pub fn push(
        &mut self,
        section: &'static str,
        figure: impl Into<String>,
        value: Option<f64>,
        unit: &'static str,
        target: Option<Target>,
        note: &str,
    ) -> &mut Row {
        let pass = match (value, target) {
            (Some(v), Some(Target::AtMost(t))) => Some(v <= t + 1e-9),
            (Some(v), Some(Target::Exactly(t))) => Some((v - t).abs() < 1e-9),
            (None, Some(_)) => Some(false),
            _ => None,
        };
        self.rows.push(Row {
            section,
            figure: figure.into(),
            value,
            unit,
            target,
            pass,
            note: note.to_string(),
        });
        self.rows.last_mut().expect("just pushed")
    }

    pub fn missed(&self) -> usize {
        self.rows.iter().filter(|r| r.pass == Some(false)).count()
    }

    pub fn table(&self) -> String {
        let header = ["figure", "measured", "target", "result"];
        let mut lines: Vec<[String; 4]> = Vec::new();
        let mut sections: Vec<(usize, &str)> = Vec::new();
        for row in &self.rows {
            if sections.last().map(|s| s.1) != Some(row.section) {
                sections.push((lines.len(), row.section));
            }
            let value = row
                .value
                .map_or_else(|| "not measured".to_string(), |v| format_value(v, row.unit));
            let target = match row.target {
                None => String::new(),
                Some(Target::AtMost(t)) => format!("<= {}", format_value(t, row.unit)),
                Some(Target::Exactly(t)) => format!("== {}", format_value(t, row.unit)),
                Some(Target::Rule(rule)) => rule.to_string(),
            };
            let result = match row.pass {
                None => String::new(),
                Some(true) => "pass".into(),
                Some(false) => "FAIL".into(),
            };
            let figure = if row.note.is_empty() {
                row.figure.clone()
            } else {
                format!("{} ({})", row.figure, row.note)
            };
            lines.push([figure, value, target, result]);
        }
        let mut widths = header.map(str::len);
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let rule = format!(
            "+{}+\n",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("+")
        );
        let fmt_line = |cells: &[String; 4]| {
            format!(
                "| {:<w0$} | {:>w1$} | {:<w2$} | {:<w3$} |\n",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            )
        };
        out.push_str(&rule);
        out.push_str(&fmt_line(&header.map(String::from)));
        out.push_str(&rule);
        let mut next_section = sections.iter().peekable();
        for (i, line) in lines.iter().enumerate() {
            if let Some((_, name)) = next_section.next_if(|(start, _)| *start == i) {
                let title = format!("[{name}]");
                out.push_str(&fmt_line(&[
                    title,
                    String::new(),
                    String::new(),
                    String::new(),
                ]));
            }
            out.push_str(&fmt_line(line));
        }
        out.push_str(&rule);
        out
    }
}

fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "s" => format!("{v:.2} s"),
        "ms" => format!("{v:.1} ms"),
        "MiB" => format!("{v:.1} MiB"),
        "KiB" => format!("{v:.1} KiB"),
        "x" => format!("{v:.2}x"),
        "/s" => format!("{v:.0}/s"),
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_target_fails_the_row() {
        let mut r = Report::default();
        r.push("s", "a", Some(2.0), "s", Some(Target::AtMost(1.0)), "");
        r.push("s", "b", Some(0.0), "", Some(Target::Exactly(0.0)), "");
        r.push("s", "c", None, "", Some(Target::AtMost(1.0)), "");
        assert_eq!(r.missed(), 2);
        assert!(r.table().contains("FAIL"));
    }
}
