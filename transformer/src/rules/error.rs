//! What can be wrong with a rules file, as one error type whose messages stand on their own.

use std::path::PathBuf;

use super::TEXT_ORIGIN;

/// A rules file that cannot be used, with what to do about it. Each message is complete on its
/// own: where (the file), which key (`fields[2].bad.regex`), what is wrong, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        error: std::io::Error,
    },
    /// Not YAML, not the rules' shape, or an unknown key (the parser's message names the key
    /// path, the expected keys and the line).
    #[error("{origin}: {message}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// A key whose value cannot be used.
    #[error("{origin}: {key}: {problem}; {fix}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// Path of the key, e.g. `fields[2].bad.regex`.
        key: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        fix: String,
    },
}

impl RulesError {
    /// A key whose value is wrong, what is wrong with it, and the fix.
    pub(super) fn invalid(
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            origin: TEXT_ORIGIN.to_owned(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The same error, saying it comes from `new_origin`.
    pub(super) fn with_origin(self, new_origin: &str) -> Self {
        match self {
            Self::Syntax { message, .. } => Self::Syntax {
                origin: new_origin.to_owned(),
                message,
            },
            Self::Invalid {
                key, problem, fix, ..
            } => Self::Invalid {
                origin: new_origin.to_owned(),
                key,
                problem,
                fix,
            },
            read @ Self::Read { .. } => read,
        }
    }

    /// The offending key path, when the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}
