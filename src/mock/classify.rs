//! The mock's deterministic sentiment classifier, so that evaluation and annotation demos on
//! `--mock` show a meaningful leaderboard instead of random words.
//!
//! A prompt that asks for one of `positive`, `negative` or `neutral` is answered with a label:
//! the lexicon's reading of the text ([`sentiment`]), except for a deterministic share of
//! (model, prompt) pairs where the model "errs" and answers the next label. The share is the
//! model's [`error_rate`], so models differ in accuracy, and a different prompt wording (a
//! variant) moves which rows a model gets wrong. Public so that tests compute the answers they
//! expect independently of the server.

/// The labels the classifier answers with, in the order an error moves through them.
pub const LABELS: [&str; 3] = ["positive", "negative", "neutral"];

const POSITIVE: &[&str] = &[
    "love",
    "loved",
    "great",
    "happy",
    "perfect",
    "excellent",
    "worth",
    "fine",
    "good",
    "best",
    "amazing",
    "sharp",
    "recommend",
    "gerne",
    "gute",
    "bien",
    "super",
    "fast",
    "sturdy",
    "nice",
];
const NEGATIVE: &[&str] = &[
    "broken",
    "never",
    "useless",
    "returned",
    "cheap",
    "bad",
    "worst",
    "poor",
    "refund",
    "late",
    "retard",
    "smelled",
    "slow",
    "awful",
    "disappointed",
    "noisy",
    "leaks",
    "fails",
    "hate",
    "mauvais",
    "schlecht",
];

/// The lexicon's label for `text`: more positive than negative words is `positive`, more
/// negative is `negative`, a tie (none at all included) is `neutral`.
pub fn sentiment(text: &str) -> &'static str {
    let (mut pos, mut neg) = (0i32, 0i32);
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = word.to_lowercase();
        if POSITIVE.contains(&w.as_str()) {
            pos += 1;
        }
        if NEGATIVE.contains(&w.as_str()) {
            neg += 1;
        }
    }
    match pos.cmp(&neg) {
        std::cmp::Ordering::Greater => LABELS[0],
        std::cmp::Ordering::Less => LABELS[1],
        std::cmp::Ordering::Equal => LABELS[2],
    }
}

/// The share (0..1) of prompts a model answers wrongly: 5% to 35%, fixed per slug.
pub fn error_rate(model: &str) -> f64 {
    let b = blake3::hash(model.as_bytes());
    0.05 + f64::from(b.as_bytes()[0] % 31) / 100.0
}

/// Whether `prompt` asks for a sentiment label (names all three labels).
pub fn asks_for_label(prompt: &str) -> bool {
    let p = prompt.to_lowercase();
    LABELS.iter().all(|l| p.contains(l))
}

/// The label `model` answers for `text` asked through `prompt` (the whole conversation's
/// text, so that prompt variants err on different rows).
pub fn label_for(model: &str, prompt: &str, text: &str) -> &'static str {
    let truth = sentiment(text);
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    h.update(&[0]);
    h.update(prompt.as_bytes());
    let b = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&b.as_bytes()[..8]);
    let draw = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    if draw >= error_rate(model) {
        return truth;
    }
    let i = LABELS.iter().position(|l| *l == truth).unwrap_or(0);
    LABELS[(i + 1 + usize::from(b.as_bytes()[8] % 2)) % LABELS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lexicon_reads_the_demo_reviews() {
        assert_eq!(sentiment("Battery lasts two days, very happy."), "positive");
        assert_eq!(
            sentiment("Arrived broken, support never answered."),
            "negative"
        );
        assert_eq!(sentiment("Does what it says."), "neutral");
    }

    #[test]
    fn models_differ_and_errors_follow_the_rate() {
        let prompts: Vec<String> = (0..4000).map(|i| format!("row {i} happy")).collect();
        for model in ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku"] {
            let wrong = prompts
                .iter()
                .filter(|p| label_for(model, p, p) != "positive")
                .count() as f64;
            let rate = wrong / prompts.len() as f64;
            assert!((rate - error_rate(model)).abs() < 0.03, "{model}: {rate}");
        }
        assert_ne!(
            error_rate("openai/gpt-4o-mini"),
            error_rate("anthropic/claude-3.5-haiku")
        );
    }

    #[test]
    fn asks_for_label_needs_all_three() {
        assert!(asks_for_label("Answer positive, negative or Neutral."));
        assert!(!asks_for_label("Answer positive or negative."));
    }
}
