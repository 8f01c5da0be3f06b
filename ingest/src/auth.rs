//! The tokens senders present, checked in constant time. A token is known by its name in logs
//! and metrics; its value is never printed.

use pipeline::config::SecretString;
use subtle::ConstantTimeEq;

/// The valid tokens, by name.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<(String, SecretString)>,
}

impl Tokens {
    /// Adds a token.
    pub fn insert(&mut self, name: String, token: SecretString) {
        self.tokens.push((name, token));
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The name of the token `presented` matches, comparing every token in constant time (no
    /// early exit, so timing tells nothing about which or how much matched).
    pub fn name_of(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (name, token) in &self.tokens {
            if bool::from(token.expose().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(name.as_str());
            }
        }
        found
    }
}

/// How a request's credentials fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials at all.
    Missing,
    /// Credentials in the wrong form (e.g. not `Splunk <token>`).
    Malformed,
    /// Well-formed, but no such token.
    Unknown,
}

/// Checks an `Authorization` header value of the form `<scheme> <token>`.
pub fn check_scheme<'t>(
    tokens: &'t Tokens,
    header: Option<&str>,
    scheme: &str,
) -> Result<&'t str, AuthFailure> {
    let header = header.ok_or(AuthFailure::Missing)?;
    let (given, token) = header
        .trim()
        .split_once(' ')
        .ok_or(AuthFailure::Malformed)?;
    if !given.eq_ignore_ascii_case(scheme) {
        return Err(AuthFailure::Malformed);
    }
    tokens.name_of(token.trim()).ok_or(AuthFailure::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_tokens() {
        let mut tokens = Tokens::default();
        tokens.insert("a".into(), SecretString::new("t-1"));
        tokens.insert("b".into(), SecretString::new("t-2"));
        let cases = [
            (None, Err(AuthFailure::Missing)),
            (Some("t-1"), Err(AuthFailure::Malformed)),
            (Some("Bearer t-1"), Err(AuthFailure::Malformed)),
            (Some("Splunk t-3"), Err(AuthFailure::Unknown)),
            (Some("Splunk t-1"), Ok("a")),
            (Some("splunk  t-2"), Ok("b")),
        ];
        for (header, expected) in cases {
            assert_eq!(
                check_scheme(&tokens, header, "Splunk"),
                expected,
                "{header:?}"
            );
        }
    }
}
