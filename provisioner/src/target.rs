//! Which target the provisioner converges: the declared one, checked against the plugins the
//! cluster has (`_cat/plugins`), or with `auto` the one the cluster supports, with the reason.

use std::fmt;

use pipeline::spec::TargetChoice;

use crate::plugins::REQUIRED;

/// What the provisioner converges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Templates, the results index and retention, for logwarden's own detector.
    Builtin,
    /// Templates and retention, plus detectors, monitors and channels in the plugins.
    Plugins,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Builtin => "builtin",
            Self::Plugins => "opensearch-plugins",
        })
    }
}

/// The chosen target and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The target.
    pub target: Target,
    /// Why, for people.
    pub reason: String,
}

/// The plugins `opensearch-plugins` needs that `installed` lacks.
pub fn missing(installed: &[String]) -> Vec<&'static str> {
    REQUIRED
        .into_iter()
        .filter(|p| !installed.iter().any(|i| i == p))
        .collect()
}

/// Chooses the target for `declared` on a cluster with `installed` plugins; `Err` lists the
/// plugins `opensearch-plugins` needs and the cluster lacks.
pub fn choose(declared: TargetChoice, installed: &[String]) -> Result<Choice, Vec<&'static str>> {
    let lacking = missing(installed);
    match declared {
        TargetChoice::Builtin => Ok(Choice {
            target: Target::Builtin,
            reason: "declared".into(),
        }),
        TargetChoice::OpensearchPlugins if lacking.is_empty() => Ok(Choice {
            target: Target::Plugins,
            reason: "declared; the cluster has the anomaly-detection, alerting and notifications plugins".into(),
        }),
        TargetChoice::OpensearchPlugins => Err(lacking),
        TargetChoice::Auto if lacking.is_empty() => Ok(Choice {
            target: Target::Plugins,
            reason: "auto: the cluster has the anomaly-detection, alerting and notifications plugins".into(),
        }),
        TargetChoice::Auto => Ok(Choice {
            target: Target::Builtin,
            reason: format!(
                "auto: the cluster lacks {}, so logwarden's own detector does the detecting",
                lacking.join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn auto_follows_the_plugins_and_says_why() {
        let core = names(&["opensearch-job-scheduler"]);
        let full = names(&[
            "opensearch-alerting",
            "opensearch-anomaly-detection",
            "opensearch-job-scheduler",
            "opensearch-notifications",
            "opensearch-notifications-core",
        ]);
        let choice = choose(TargetChoice::Auto, &core).expect("builtin");
        assert_eq!(choice.target, Target::Builtin);
        assert!(
            choice.reason.contains(
                "lacks opensearch-anomaly-detection, opensearch-alerting, opensearch-notifications"
            ),
            "{}",
            choice.reason
        );
        assert_eq!(
            choose(TargetChoice::Auto, &full).map(|c| c.target),
            Ok(Target::Plugins)
        );
        assert_eq!(
            choose(
                TargetChoice::OpensearchPlugins,
                &names(&["opensearch-alerting"])
            ),
            Err(vec![
                "opensearch-anomaly-detection",
                "opensearch-notifications"
            ])
        );
        assert_eq!(
            choose(TargetChoice::Builtin, &full).map(|c| c.target),
            Ok(Target::Builtin)
        );
    }
}
