//! Keeps the API key out of everything a server sends back: a hostile or careless server may
//! echo the `Authorization` header in an error message, which orbatch logs and writes.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// What replaces a key in a message.
pub const REDACTED: &str = "[REDACTED]";

/// Removes known secrets from provider messages (cheap to clone).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<SecretString>>,
}

impl Redactor {
    /// A redactor for these keys (empty ones are ignored).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a SecretString>) -> Redactor {
        let secrets = keys
            .into_iter()
            .filter(|k| !k.expose_secret().is_empty())
            .cloned()
            .collect();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// `text` with every occurrence of a key replaced by `[REDACTED]`.
    pub fn clean(&self, text: String) -> String {
        let mut text = text;
        for s in self.secrets.iter() {
            let key = s.expose_secret();
            if text.contains(key) {
                text = text.replace(key, REDACTED);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_every_occurrence() {
        let key = SecretString::from("sk-or-v1-abc");
        let r = Redactor::new([&key]);
        assert_eq!(
            r.clean("bad key: Bearer sk-or-v1-abc (sk-or-v1-abc)".into()),
            "bad key: Bearer [REDACTED] ([REDACTED])"
        );
        assert_eq!(Redactor::default().clean("x".into()), "x");
    }
}
