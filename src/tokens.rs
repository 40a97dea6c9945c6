//! Local token counting with tiktoken (exact for OpenAI models, an approximation elsewhere).
//!
//! The BPE tables take ~0.1 s of CPU to build, so each is built once, on first use, and only
//! by the commands that need it.

use std::sync::LazyLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// A tiktoken encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GPT-4o, o-series, GPT-4.1, GPT-5 and (as a stand-in) unknown families.
    O200k,
    /// GPT-4, GPT-3.5.
    Cl100k,
}

impl Encoding {
    /// The encoding's name (`o200k_base`, `cl100k_base`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200k => "o200k_base",
            Encoding::Cl100k => "cl100k_base",
        }
    }

    /// The encoding closest to `model` (with its `/models` tokenizer family), and whether the
    /// count is exact (only OpenAI models use these encodings).
    pub fn for_model(model: &str, tokenizer: Option<&str>) -> (Encoding, bool) {
        let slug = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let openai = model.starts_with("openai/")
            || tokenizer.is_some_and(|t| t.eq_ignore_ascii_case("GPT"));
        let cl100k = slug.starts_with("gpt-4-")
            || slug == "gpt-4"
            || slug.starts_with("gpt-3.5")
            || slug.starts_with("gpt-4-turbo");
        let enc = if cl100k {
            Encoding::Cl100k
        } else {
            Encoding::O200k
        };
        let exact = openai
            && (cl100k
                || ["gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4"]
                    .iter()
                    .any(|p| slug.starts_with(p)));
        (enc, exact)
    }

    fn bpe(self) -> Option<&'static CoreBPE> {
        static O200K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::o200k_base().ok());
        static CL100K: LazyLock<Option<CoreBPE>> =
            LazyLock::new(|| tiktoken_rs::cl100k_base().ok());
        match self {
            Encoding::O200k => O200K.as_ref(),
            Encoding::Cl100k => CL100K.as_ref(),
        }
    }

    /// Tokens of one text.
    pub fn count(self, text: &str) -> u64 {
        match self.bpe() {
            Some(bpe) => bpe.encode_with_special_tokens(text).len() as u64,
            // Cannot happen with the bundled tables; fall back to a byte count (an upper bound).
            None => text.len() as u64,
        }
    }

    /// Prompt tokens of a chat request, counted as OpenAI does: 3 per message, the role and
    /// content (and name, +1), and 3 to prime the reply.
    pub fn count_messages(self, messages: &[Value]) -> u64 {
        let mut total = 3;
        for m in messages {
            total += 3;
            if let Some(role) = m.get("role").and_then(Value::as_str) {
                total += self.count(role);
            }
            match m.get("content") {
                Some(Value::String(s)) => total += self.count(s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            total += self.count(t);
                        }
                    }
                }
                _ => {}
            }
            if let Some(name) = m.get("name").and_then(Value::as_str) {
                total += self.count(name) + 1;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_counts() {
        let s = "Hello, OpenRouter! How many tokens is this sentence, exactly? 你好世界";
        assert_eq!(Encoding::O200k.count(s), 17);
        assert_eq!(Encoding::Cl100k.count(s), 20);
    }

    #[test]
    fn families() {
        assert_eq!(
            Encoding::for_model("openai/gpt-4o-mini", Some("GPT")),
            (Encoding::O200k, true)
        );
        assert_eq!(
            Encoding::for_model("openai/gpt-4", None),
            (Encoding::Cl100k, true)
        );
        assert_eq!(
            Encoding::for_model("anthropic/claude-3.5-haiku", Some("Claude")),
            (Encoding::O200k, false)
        );
    }
}
