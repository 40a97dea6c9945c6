//! Prompts longer than their model's context length (from `/models`): such a request can only
//! fail (OpenRouter answers 400 `context_length_exceeded`), so `validate`, `estimate` and
//! `run` say so before sending. One pass over the rows; the byte bound (which cannot
//! undercount) screens each prompt, and only a prompt it cannot clear is counted with tiktoken.

use std::collections::HashMap;
use std::path::Path;

use super::count::for_each_row;
use crate::input::InputError;
use crate::job::Job;
use crate::prices::{PriceTable, prompt_tokens_upper_bound};
use crate::prompts::Prompts;
use crate::tokens::Encoding;

/// Examples kept for the message.
const EXAMPLES: usize = 5;

/// The prompts found longer than their model's context.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// How many (row, model) requests.
    pub requests: u64,
    /// The first few, as `FILE:LINE: MODEL: about N prompt tokens, context length C`.
    pub examples: Vec<String>,
}

impl TooLong {
    /// The warning lines, none when every prompt fits.
    pub fn warnings(&self) -> Vec<String> {
        if self.requests == 0 {
            return Vec::new();
        }
        let (noun, verb) = if self.requests == 1 {
            ("request", "has a prompt")
        } else {
            ("requests", "have prompts")
        };
        let mut out = vec![format!(
            "{} {noun} {verb} longer than the model's context length (from /models): OpenRouter refuses them (HTTP 400, context_length); shorten those rows or pick a model with a longer context",
            self.requests
        )];
        out.extend(self.examples.iter().cloned());
        if self.requests > self.examples.len() as u64 {
            out.push(format!(
                "... and {} more",
                self.requests - self.examples.len() as u64
            ));
        }
        out
    }
}

impl TooLong {
    /// Counts a request of `tokens` prompt tokens to `model` (at `path:line`) when it is
    /// longer than the model's context length.
    pub fn check(&mut self, at: (&Path, u64), model: &str, tokens: u64, prices: &PriceTable) {
        let Some(context) = prices.get(model).and_then(|p| p.context_length) else {
            return;
        };
        if tokens <= context {
            return;
        }
        self.requests += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!(
                "{}:{}: {model}: about {tokens} prompt tokens, context length {context}",
                at.0.display(),
                at.1
            ));
        }
    }
}

/// True when some prompt may be longer than some model's context: `max_prompt_upper` (the
/// scan's bound) is above the smallest context length listed.
pub fn may_be_too_long(max_prompt_upper: u64, prices: &PriceTable) -> bool {
    prices
        .models
        .values()
        .filter_map(|p| p.context_length)
        .min()
        .is_some_and(|smallest| max_prompt_upper > smallest)
}

/// Finds the job's prompts longer than their model's context length. Models without a known
/// context length are not checked.
pub fn too_long(job: &Job, prompts: &Prompts, prices: &PriceTable) -> Result<TooLong, InputError> {
    let mut out = TooLong::default();
    let smallest = prices
        .models
        .values()
        .filter_map(|p| p.context_length)
        .min();
    let Some(smallest) = smallest else {
        return Ok(out);
    };
    let arms = prompts.arms(&job.request);
    let mut encodings: HashMap<String, Encoding> = HashMap::new();
    for_each_row(job, |row| {
        for arm in &arms {
            let Ok(messages) = arm.prompt.messages(&row) else {
                continue;
            };
            if prompt_tokens_upper_bound(&messages) <= smallest {
                continue;
            }
            for model in arm.builder.models_for(&row) {
                let Some(price) = prices.get(model) else {
                    continue;
                };
                let enc = *encodings
                    .entry(model.to_string())
                    .or_insert_with(|| Encoding::for_model(model, price.tokenizer.as_deref()).0);
                let tokens = enc.count_messages(&messages);
                out.check((&job.input, row.line), model, tokens, prices);
            }
        }
        true
    })?;
    Ok(out)
}
