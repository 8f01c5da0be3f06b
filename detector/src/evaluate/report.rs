//! The evaluation as people read it (pure): a fixed-width [`table`] for the terminal, and a
//! [`Report`] rendered as Markdown or as one self-contained HTML page (no script, no external
//! file) to attach to a review. Both renderings come from the same rows of plain text, and every
//! text is escaped on the way out: detector names and label fields come from files and topics
//! anyone may write (and entities come from the records themselves).
//!
//! A category detector's entity rows follow its own row, the `entity` column naming each (`-` on
//! a detector's row; `N more entities` on the row that sums up the rest).

use std::fmt::Write as _;
use std::path::Path;

use super::score::{ENTITY_ROWS, Score};

/// The columns of the detectors' table.
const DETECTOR_COLUMNS: [&str; 13] = [
    "detector",
    "entity",
    "phases",
    "detected",
    "flagged",
    "false flags",
    "precision",
    "recall",
    "median TTD (interval)",
    "median TTD (delivery)",
    "false alerts",
    "normal traffic",
    "false alerts/h",
];

/// The columns of the phases' table.
const PHASE_COLUMNS: [&str; 11] = [
    "detector",
    "entity",
    "run",
    "phase",
    "field",
    "start",
    "intensity",
    "traffic",
    "detected",
    "TTD (interval)",
    "TTD (delivery)",
];

/// What an evaluation covered, and its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The run asked for, or `None` for every run on the labels topic.
    pub run: Option<String>,
    /// The runs whose labels were read.
    pub runs: Vec<String>,
    /// Anomaly labels read.
    pub anomaly_labels: usize,
    /// Normal-traffic labels read; without any, the span is the anomalies' with a margin.
    pub normal_labels: usize,
    /// The first label's start and the last label's end, epoch ms.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// One row per detector, each category detector's followed by its entities' rows.
    pub scores: Vec<Score>,
}

/// How `--report FILE` is written, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.md`.
    Markdown,
    /// `.html` (or `.htm`).
    Html,
}

impl Format {
    /// The format `path`'s extension asks for.
    pub fn of(path: &Path) -> Result<Self, String> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("md" | "markdown") => Ok(Self::Markdown),
            Some("html" | "htm") => Ok(Self::Html),
            _ => Err(format!(
                "--report {}: name a file ending in .md (Markdown) or .html (a self-contained page)",
                path.display()
            )),
        }
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1_000.0))
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}"))
}

fn hours(ms: i64) -> String {
    format!("{:.2} h", ms as f64 / 3_600_000.0)
}

/// An epoch-ms time as RFC 3339 (UTC, milliseconds).
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
}

/// A score's entity cell: the entity, `N more entities` for the row summing them up, or `-`.
fn entity(score: &Score) -> String {
    match (&score.entity, score.others) {
        (Some(entity), _) => entity.clone(),
        (None, 0) => "-".to_owned(),
        (None, 1) => "1 more entity".to_owned(),
        (None, n) => format!("{n} more entities"),
    }
}

/// The detectors' rows, one cell per [`DETECTOR_COLUMNS`].
fn detector_rows(scores: &[Score]) -> Vec<Vec<String>> {
    scores
        .iter()
        .map(|s| {
            vec![
                s.detector.clone(),
                entity(s),
                s.phases.len().to_string(),
                s.detected().to_string(),
                s.flagged.to_string(),
                s.false_flags().to_string(),
                percent(s.precision()),
                percent(s.recall()),
                seconds(s.median_ttd_ms()),
                seconds(s.median_ttd_delivery_ms()),
                s.false_alerts.to_string(),
                hours(s.normal_ms),
                rate(s.false_alerts_per_hour()),
            ]
        })
        .collect()
}

/// The phases' rows, one cell per [`PHASE_COLUMNS`]: every detector's phases.
fn phase_rows(scores: &[Score]) -> Vec<Vec<String>> {
    scores
        .iter()
        .flat_map(|s| {
            s.phases.iter().map(move |p| {
                vec![
                    s.detector.clone(),
                    entity(s),
                    p.phase.run_id.clone(),
                    p.phase.phase.to_string(),
                    p.phase.field.clone(),
                    time(p.phase.start_ms),
                    percent(p.phase.intensity),
                    p.phase.traffic.clone().unwrap_or_else(|| "-".to_owned()),
                    if p.detected() { "yes" } else { "no" }.to_owned(),
                    seconds(p.ttd_ms),
                    seconds(p.ttd_delivery_ms),
                ]
            })
        })
        .collect()
}

/// The scores as a fixed-width table for the terminal.
pub fn table(scores: &[Score]) -> String {
    let widths = [30, 18, 6, 8, 7, 11, 9, 6, 21, 21, 12, 14, 14];
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let _ = match i {
                0 => write!(out, "{cell:<width$}"),
                1 => write!(out, " {cell:<width$}"),
                _ => write!(out, " {cell:>width$}"),
            };
        }
        out.push('\n');
    };
    line(&DETECTOR_COLUMNS.map(str::to_owned));
    for row in detector_rows(scores) {
        line(&row);
    }
    out
}

/// What the report's heading and summary say.
fn summary(report: &Report) -> (String, Vec<String>) {
    let title = match &report.run {
        Some(run) => format!("logwarden evaluation: run {run}"),
        None => "logwarden evaluation: every run".to_owned(),
    };
    let span = if report.normal_labels > 0 {
        "the union of every label's span (anomaly and normal phases)".to_owned()
    } else {
        "no normal traffic labelled: the anomalies' span with ten intervals either side".to_owned()
    };
    let mut lines = vec![
        format!("Runs: {}", report.runs.join(", ")),
        format!(
            "Labelled: {} to {}; {} anomaly phases, {} normal phases",
            time(report.from),
            time(report.to),
            report.anomaly_labels,
            report.normal_labels
        ),
        format!("Evaluated span: {span}"),
        "Precision counts every flagged interval in the span; a flag is true inside one of the \
         detector's phases or in the interval after it. A false alert is an episode (consecutive \
         flagged intervals) that touches none of its phases; normal traffic is the span minus \
         its phases. TTD (interval) runs from a phase's start to the end of its first flagged \
         interval; TTD (delivery) to the first channel that accepted the alert (the alerts \
         index)."
            .to_owned(),
    ];
    if report
        .scores
        .iter()
        .any(|s| s.entity.is_some() || s.others > 0)
    {
        lines.push(format!(
            "A category detector's precision counts entity flags (one entity in one interval): \
             true when the entity is the one its phase labelled (or the phase labelled none) \
             and the interval is in the phase or the one after it; false for any other entity, \
             and for the labelled entity outside its phases. Its other figures are its interval \
             summaries'. Each labelled entity has a row; other flagged entities have one row \
             each (the {ENTITY_ROWS} most flagged) and the rest one row, all their flags false."
        ));
    }
    (title, lines)
}

/// Text for a Markdown table cell or line: HTML's special characters as entities, `|` escaped,
/// line breaks as spaces.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML content or an attribute value.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn md_table(out: &mut String, columns: &[&str], rows: &[Vec<String>]) {
    let header: Vec<String> = columns.iter().map(|c| md(c)).collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rule: Vec<&str> = (0..columns.len())
        .map(|i| if i < 2 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| md(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// The report as Markdown.
pub fn markdown(report: &Report) -> String {
    let (title, lines) = summary(report);
    let mut out = format!("# {}\n\n", md(&title));
    for line in &lines {
        let _ = writeln!(out, "- {}", md(line));
    }
    out.push_str("\n## Detectors\n\n");
    md_table(&mut out, &DETECTOR_COLUMNS, &detector_rows(&report.scores));
    out.push_str("\n## Phases\n\n");
    let phases = phase_rows(&report.scores);
    if phases.is_empty() {
        out.push_str("No labelled anomaly phase of any detector's ground truth.\n");
    } else {
        md_table(&mut out, &PHASE_COLUMNS, &phases);
    }
    out
}

fn html_table(out: &mut String, columns: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table>\n<thead><tr>");
    for column in columns {
        let _ = write!(out, "<th>{}</th>", html(column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let _ = match i {
                0 | 1 => write!(out, "<td>{}</td>", html(cell)),
                _ => write!(out, "<td class=\"n\">{}</td>", html(cell)),
            };
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The report as one self-contained HTML page.
pub fn html_page(report: &Report) -> String {
    let (title, lines) = summary(report);
    let title = html(&title);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin-bottom: 2em; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}\n\
         th {{ background: #f3f3f3; text-align: left; }}\n\
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n<ul>\n"
    );
    for line in &lines {
        let _ = writeln!(out, "<li>{}</li>", html(line));
    }
    out.push_str("</ul>\n<h2>Detectors</h2>\n");
    html_table(&mut out, &DETECTOR_COLUMNS, &detector_rows(&report.scores));
    out.push_str("<h2>Phases</h2>\n");
    let phases = phase_rows(&report.scores);
    if phases.is_empty() {
        out.push_str("<p>No labelled anomaly phase of any detector&#39;s ground truth.</p>\n");
    } else {
        html_table(&mut out, &PHASE_COLUMNS, &phases);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Markdown => markdown(report),
        Format::Html => html_page(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::score::{Delivered, EntityFlag, Input, Phase, score, score_category};

    const MINUTE: i64 = 60_000;
    /// 2026-11-23T07:00:00Z.
    const BASE: i64 = 1_795_417_200_000;

    /// One detector over an hour: phase 10..15 (intensity 0.5, a surge) flagged at 11 and 12,
    /// its alert delivered at 12:30; phase 30..33 missed; a false flag at 50.
    fn report(detector: &str) -> Report {
        let phases = [
            Phase {
                run_id: "run-1".into(),
                phase: 1,
                field: "country".into(),
                start_ms: BASE + 10 * MINUTE,
                end_ms: BASE + 15 * MINUTE,
                intensity: Some(0.5),
                traffic: Some("3x surge".into()),
                entity: None,
            },
            Phase {
                run_id: "run-1".into(),
                phase: 3,
                field: "country".into(),
                start_ms: BASE + 30 * MINUTE,
                end_ms: BASE + 33 * MINUTE,
                intensity: None,
                traffic: None,
                entity: None,
            },
        ];
        let flagged: Vec<(i64, i64)> = [11, 12, 50]
            .iter()
            .map(|m| (BASE + m * MINUTE, BASE + (m + 1) * MINUTE))
            .collect();
        let deliveries = [Delivered {
            interval: flagged[0],
            delivered_at: BASE + 12 * MINUTE + 30_000,
        }];
        let span = [(BASE, BASE + 60 * MINUTE)];
        let score = score(&Input {
            detector,
            entity: None,
            flagged: &flagged,
            phases: &phases,
            deliveries: &deliveries,
            span: &span,
            interval_ms: MINUTE,
        });
        Report {
            run: Some("run-1".into()),
            runs: vec!["run-1".into()],
            anomaly_labels: 2,
            normal_labels: 3,
            from: BASE,
            to: BASE + 60 * MINUTE,
            scores: vec![score],
        }
    }

    #[test]
    fn the_table_has_a_row_per_detector() {
        let text = table(&report("country-anomaly-detector").scores);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "country-anomaly-detector",
                "-",
                "2",
                "1",
                "3",
                "1",
                "67%",
                "50%",
                "120.0",
                "s",
                "150.0",
                "s",
                "1",
                "0.87",
                "h",
                "1.15"
            ],
            "{text}"
        );
    }

    #[test]
    fn markdown_rows_are_exact_and_escaped() {
        let text = markdown(&report("country-anomaly-detector"));
        assert!(
            text.starts_with("# logwarden evaluation: run run-1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n| country-anomaly-detector | - | 2 | 1 | 3 | 1 | 67% | 50% | 120.0 s | 150.0 s | 1 | 0.87 h | 1.15 |\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\n| country-anomaly-detector | - | run-1 | 1 | country | 2026-11-23T07:10:00.000Z | 50% | 3x surge | yes | 120.0 s | 150.0 s |\n\
                 | country-anomaly-detector | - | run-1 | 3 | country | 2026-11-23T07:30:00.000Z | - | - | no | - | - |\n"
            ),
            "{text}"
        );
        let text = markdown(&report("<b>x</b>|y"));
        assert!(
            text.contains("\n| &lt;b&gt;x&lt;/b&gt;\\|y | - | 2 |"),
            "{text}"
        );
        assert!(!text.contains("<b>"), "{text}");
    }

    #[test]
    fn the_html_page_is_self_contained_and_escapes_every_text() {
        let page = html_page(&report("<b>x</b>"));
        assert!(page.starts_with("<!DOCTYPE html>\n"), "{page}");
        assert!(
            page.contains(
                "<tr><td>&lt;b&gt;x&lt;/b&gt;</td><td>-</td><td class=\"n\">2</td><td class=\"n\">1</td>\
                 <td class=\"n\">3</td><td class=\"n\">1</td><td class=\"n\">67%</td>\
                 <td class=\"n\">50%</td><td class=\"n\">120.0 s</td><td class=\"n\">150.0 s</td>\
                 <td class=\"n\">1</td><td class=\"n\">0.87 h</td><td class=\"n\">1.15</td></tr>\n"
            ),
            "{page}"
        );
        assert!(!page.contains("<b>"), "{page}");
        assert!(
            !page.contains("<script") && !page.contains("src=") && !page.contains("href="),
            "{page}"
        );
        assert!(page.ends_with("</body>\n</html>\n"));
    }

    /// A category detector over an hour: the phase 10..15 labelled with client `<c1>` flagged
    /// at 10, 12 and 14; clients `a&b` and `z` each flagged once at 40, shown one row each up to
    /// `rows`.
    fn category(rows: usize) -> Report {
        let phases = [Phase {
            run_id: "run-1".into(),
            phase: 1,
            field: "country".into(),
            start_ms: BASE + 10 * MINUTE,
            end_ms: BASE + 15 * MINUTE,
            intensity: Some(0.02),
            traffic: None,
            entity: Some("<c1>".into()),
        }];
        let flag = |entity: &str, m: i64| EntityFlag {
            entity: entity.into(),
            interval: (BASE + m * MINUTE, BASE + (m + 1) * MINUTE),
        };
        let flags = [
            flag("<c1>", 10),
            flag("<c1>", 12),
            flag("<c1>", 14),
            flag("a&b", 40),
            flag("z", 40),
        ];
        let summaries: Vec<(i64, i64)> = [10, 12, 14, 40]
            .iter()
            .map(|m| (BASE + m * MINUTE, BASE + (m + 1) * MINUTE))
            .collect();
        let span = [(BASE, BASE + 60 * MINUTE)];
        let scores = score_category(
            &Input {
                detector: "client-detector",
                entity: None,
                flagged: &summaries,
                phases: &phases,
                deliveries: &[],
                span: &span,
                interval_ms: MINUTE,
            },
            &flags,
            rows,
        );
        Report {
            run: Some("run-1".into()),
            runs: vec!["run-1".into()],
            anomaly_labels: 1,
            normal_labels: 2,
            from: BASE,
            to: BASE + 60 * MINUTE,
            scores,
        }
    }

    #[test]
    fn entity_rows_follow_their_detector_with_an_entity_column() {
        let text = table(&category(10).scores);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().take(8).collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec![
                    "detector",
                    "entity",
                    "phases",
                    "detected",
                    "flagged",
                    "false",
                    "flags",
                    "precision"
                ],
                vec!["client-detector", "-", "1", "1", "5", "2", "60%", "100%"],
                vec![
                    "client-detector",
                    "<c1>",
                    "1",
                    "1",
                    "3",
                    "0",
                    "100%",
                    "100%"
                ],
                vec!["client-detector", "a&b", "0", "0", "1", "1", "0%", "-"],
                vec!["client-detector", "z", "0", "0", "1", "1", "0%", "-"],
            ],
            "{text}"
        );

        let text = markdown(&category(1));
        assert!(
            text.contains(
                "\n| client-detector | - | 1 | 1 | 5 | 2 | 60% | 100% | 60.0 s | - | 1 | 0.92 h | 1.09 |\n\
                 | client-detector | &lt;c1&gt; | 1 | 1 | 3 | 0 | 100% | 100% | 60.0 s | - | 0 | 0.92 h | 0.00 |\n\
                 | client-detector | a&amp;b | 0 | 0 | 1 | 1 | 0% | - | - | - | 1 | 1.00 h | 1.00 |\n\
                 | client-detector | 1 more entity | 0 | 0 | 1 | 1 | 0% | - | - | - | 1 | 1.00 h | 1.00 |\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\n| client-detector | &lt;c1&gt; | run-1 | 1 | country | 2026-11-23T07:10:00.000Z | 2% | - | yes | 60.0 s | - |\n"
            ),
            "{text}"
        );
        assert!(text.contains("- A category detector's precision counts entity flags"));

        let page = html_page(&category(10));
        assert!(
            page.contains("<tr><td>client-detector</td><td>&lt;c1&gt;</td><td class=\"n\">1</td>"),
            "{page}"
        );
        assert!(
            page.contains("<tr><td>client-detector</td><td>a&amp;b</td>"),
            "{page}"
        );
        assert!(!page.contains("<c1>"), "{page}");
        // A detector without entities says nothing of them.
        assert!(!markdown(&report("d")).contains("category detector"));
    }

    #[test]
    fn the_report_format_follows_the_extension() {
        let cases = [
            ("out/eval.md", Ok(Format::Markdown)),
            ("eval.HTML", Ok(Format::Html)),
            ("eval.htm", Ok(Format::Html)),
            ("eval.txt", Err(())),
            ("eval", Err(())),
        ];
        for (path, expected) in cases {
            assert_eq!(
                Format::of(Path::new(path)).map_err(|_| ()),
                expected,
                "{path}"
            );
        }
        assert!(
            Format::of(Path::new("eval.txt"))
                .is_err_and(|e| e.contains(".md") && e.contains(".html"))
        );
    }
}
