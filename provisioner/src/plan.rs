//! The plan: what converging would do to each object, as data first and a table for people.
//!
//! Every object the provisioner handles, on any target, becomes one [`Step`]: its kind, its name,
//! the [`Action`] (create, update, unchanged, delete) and a detail (what differs, why it is
//! deleted). `--dry-run` prints the plan; `apply` carries it out step by step and prints the same
//! table with what was done. Pure: no IO.

use std::fmt::{self, Write as _};
use std::time::Duration;

/// What converging does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// It is missing: create it.
    Create,
    /// It exists and differs (or is stopped when it should run): change it.
    Update,
    /// It is already as declared.
    Unchanged,
    /// It is owned and left the spec (`--prune`), or it expired (retention): delete it.
    Delete,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Delete => "delete",
        })
    }
}

/// One object's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The kind of object: `index template`, `index`, `detector`, `monitor`, `channel`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// What converging does.
    pub action: Action,
    /// What differs, or why.
    pub detail: String,
}

impl Step {
    /// A step.
    pub fn new(
        kind: &'static str,
        name: impl Into<String>,
        action: Action,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            action,
            detail: detail.into(),
        }
    }
}

/// Every step, in the order they are carried out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Adds a step.
    pub fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// How many steps have `action`.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }

    /// Whether anything would change.
    pub fn changes(&self) -> bool {
        self.steps.iter().any(|s| s.action != Action::Unchanged)
    }

    /// The step for `kind` and `name`.
    pub fn step(&self, kind: &str, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.kind == kind && s.name == name)
    }

    /// The plan as an aligned table with a summary line.
    pub fn table(&self) -> String {
        table(
            ["ACTION", "KIND", "NAME", "DETAIL"],
            self.steps.iter().map(|s| {
                [
                    s.action.to_string(),
                    s.kind.to_owned(),
                    s.name.clone(),
                    s.detail.clone(),
                ]
            }),
        ) + &format!(
            "{} to create, {} to update, {} unchanged, {} to delete\n",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Unchanged),
            self.count(Action::Delete)
        )
    }
}

/// A duration as a spec would write it: the largest whole unit (`30d`, `12h`, `90m`, `45s`),
/// else as humantime prints it (`1m 30s`, `500ms`).
pub fn span(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs > 0 && duration.subsec_nanos() == 0 {
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs.is_multiple_of(size) {
                return format!("{}{unit}", secs / size);
            }
        }
    }
    humantime_serde::re::humantime::format_duration(duration).to_string()
}

/// Rows as an aligned text table (the last column is not padded).
pub fn table<const N: usize>(
    header: [&str; N],
    rows: impl IntoIterator<Item = [String; N]>,
) -> String {
    let rows: Vec<[String; N]> = std::iter::once(header.map(str::to_owned))
        .chain(rows)
        .collect();
    let mut widths = [0; N];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_the_spec_writes_them() {
        let cases = [
            (30 * 86_400, "30d"),
            (7_200, "2h"),
            (300, "5m"),
            (90, "90s"),
            (5, "5s"),
        ];
        for (secs, text) in cases {
            assert_eq!(span(Duration::from_secs(secs)), text);
        }
        assert_eq!(span(Duration::from_millis(500)), "500ms");
        assert_eq!(span(Duration::from_millis(1_500)), "1s 500ms");
    }

    #[test]
    fn the_table_aligns_columns_and_counts_actions() {
        let mut plan = Plan::default();
        plan.push(Step::new(
            "index template",
            "logwarden-events",
            Action::Unchanged,
            "",
        ));
        plan.push(Step::new(
            "detector",
            "country-anomaly-detector",
            Action::Update,
            "description, history",
        ));
        plan.push(Step::new(
            "monitor",
            "old",
            Action::Delete,
            "left the spec (--prune)",
        ));
        assert!(plan.changes());
        assert_eq!(
            plan.table(),
            "ACTION     KIND            NAME                      DETAIL\n\
             unchanged  index template  logwarden-events\n\
             update     detector        country-anomaly-detector  description, history\n\
             delete     monitor         old                       left the spec (--prune)\n\
             0 to create, 1 to update, 1 unchanged, 1 to delete\n"
        );
        assert_eq!(
            plan.step("detector", "country-anomaly-detector")
                .map(|s| s.action),
            Some(Action::Update)
        );
    }
}
