//! Keeps the API key out of everything a server sends back: a hostile or careless server may
//! echo the `Authorization` header in an error message, which orbatch logs and writes.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::Completion;

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

    /// Cleans every text field of an answer a server sent (a hostile server can echo the key
    /// in the content, the model or the provider as well as in an error message).
    pub fn clean_completion(&self, c: &mut Completion) {
        if self.secrets.is_empty() {
            return;
        }
        for field in [
            &mut c.content,
            &mut c.provider,
            &mut c.response_model,
            &mut c.generation_id,
            &mut c.finish_reason,
        ] {
            if let Some(text) = field.take() {
                *field = Some(self.clean(text));
            }
        }
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
        let mut c = Completion {
            content: Some("your key is sk-or-v1-abc".into()),
            provider: Some("sk-or-v1-abc".into()),
            ..Default::default()
        };
        r.clean_completion(&mut c);
        assert_eq!(c.content.as_deref(), Some("your key is [REDACTED]"));
        assert_eq!(c.provider.as_deref(), Some("[REDACTED]"));
    }
}
