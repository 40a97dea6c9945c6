//! [`LineView`]: a result line read in place, its texts borrowed from the line's bytes. It has
//! every field of [`super::ResultLine`] with the same JSON types, so a line is readable
//! (recovery's parse) exactly when it reads as a view; the end of a run reads each line once
//! through it (the key, the summary's figures) without building the line's strings.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::key::ResultKey;
use super::{CostSource, ErrorKind, Status};

/// A result line, borrowed from its text (field docs: [`super::ResultLine`]). Fields no reader
/// uses are still read: they decide, as in recovery's parse, whether the line is readable.
#[derive(Debug, Deserialize)]
#[allow(missing_docs, dead_code)]
#[serde(expecting = "struct ResultLine")] // the words of recovery's warnings
pub(crate) struct LineView<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(borrow, default)]
    pub variant: Option<Cow<'a, str>>,
    pub status: Status,
    #[serde(borrow)]
    pub output: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub response_model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub generation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub provider: Option<Cow<'a, str>>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    #[serde(with = "crate::money::opt", default)]
    pub cost_usd: Option<Decimal>,
    pub cost_source: Option<CostSource>,
    #[serde(with = "crate::money::opt", default)]
    pub table_cost_usd: Option<Decimal>,
    #[serde(default)]
    pub cost_mismatch: bool,
    pub latency_ms: u64,
    pub attempts: u32,
    #[serde(default)]
    pub unknown_cost_attempts: u32,
    #[serde(with = "crate::money::opt", default)]
    pub unknown_cost_max_usd: Option<Decimal>,
    #[serde(default)]
    pub rate_limited_attempts: u32,
    #[serde(borrow)]
    pub error: Option<ErrorView<'a>>,
    /// Any JSON value, as [`super::RawJson`] reads it.
    #[serde(borrow, default)]
    pub vars: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub finished_at: Option<Cow<'a, str>>,
    #[serde(default)]
    pub resumable: bool,
    #[serde(default)]
    pub cache_hit: bool,
    #[serde(with = "crate::money::opt", default)]
    pub cached_cost_usd: Option<Decimal>,
    #[serde(borrow, default)]
    pub parsed: Option<&'a RawValue>,
    #[serde(default)]
    pub schema_attempts: Option<u32>,
    #[serde(default)]
    pub scores: Option<BTreeMap<String, Option<f64>>>,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub pass: Option<bool>,
    #[serde(default)]
    pub unscored: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::money::opt", default)]
    pub judge_cost_usd: Option<Decimal>,
    #[serde(default)]
    pub judge: Option<BTreeMap<String, crate::eval::judge::JudgeRecord>>,
}

/// `error` of a [`LineView`].
#[derive(Debug, Deserialize)]
#[allow(missing_docs, dead_code)]
#[serde(expecting = "struct RowError")]
pub(crate) struct ErrorView<'a> {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

impl<'a> LineView<'a> {
    /// Reads one line of `results.jsonl` (without its `'\n'`); the error is the one
    /// [`super::lines::parse_line`] gives for the same bytes.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("empty line".to_string());
        }
        crate::json::from_bytes(bytes).map_err(|e| e.to_string())
    }

    /// The line's key: (id, variant, model).
    pub(crate) fn key(&self) -> ResultKey<'_> {
        ResultKey::of(&self.id, self.variant.as_deref(), &self.model)
    }

    /// What the line records as spent: `cost_usd` plus `judge_cost_usd` (as
    /// [`super::ResultLine::spend`]).
    pub(crate) fn spend(&self) -> Decimal {
        self.cost_usd.unwrap_or_default() + self.judge_cost_usd.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::line::LineBuilder;
    use crate::output::lines::parse_line;
    use serde_json::{Value, json};

    /// A line with every field set, as JSON.
    fn full_line() -> serde_json::Map<String, Value> {
        let mut line = LineBuilder::new("r\"1", "m")
            .ok("out \\ put")
            .counts(Some(Decimal::new(15, 6)), 2, (1, Decimal::new(3, 3)), 1)
            .build();
        line.variant = Some("v".into());
        line.error = Some(crate::output::RowError {
            kind: ErrorKind::Provider,
            status: Some(502),
            message: "m".into(),
        });
        line.response_model = Some("rm".into());
        line.finish_reason = Some("stop".into());
        line.generation_id = Some("g".into());
        line.provider = Some("p".into());
        line.prompt_tokens = Some(1);
        line.completion_tokens = Some(2);
        line.reasoning_tokens = Some(3);
        line.cached_tokens = Some(4);
        line.cost_source = Some(CostSource::Response);
        line.table_cost_usd = Some(Decimal::ONE);
        line.finished_at = Some("2026-01-01T00:00:00Z".into());
        line.resumable = true;
        line.cache_hit = true;
        line.cached_cost_usd = Some(Decimal::ONE);
        line.parsed = Some(Some(crate::output::RawJson::of(&json!({"a": 1}))));
        line.schema_attempts = Some(1);
        line.scores = Some([("c".to_string(), Some(0.5))].into());
        line.score = Some(0.5);
        line.pass = Some(true);
        line.unscored = Some([("c".to_string(), "why".to_string())].into());
        line.judge_cost_usd = Some(Decimal::ONE);
        line.judge = Some(Default::default());
        match serde_json::to_value(&line) {
            Ok(Value::Object(map)) => map,
            other => panic!("{other:?}"),
        }
    }

    /// Recovery counts a line's spend from its view: the same amount as the whole line's.
    #[test]
    fn the_views_spend_is_the_lines() {
        let text = serde_json::to_vec(&full_line()).unwrap();
        let (line, view) = (parse_line(&text).unwrap(), LineView::parse(&text).unwrap());
        assert_eq!(view.spend(), line.spend());
        assert_eq!(view.spend(), Decimal::new(1_000_015, 6));
    }

    /// The view reads exactly the lines recovery reads: the same key for a good line, and
    /// for each field given a value of another type (or removed), the same verdict.
    #[test]
    fn reads_exactly_the_lines_recovery_reads() {
        let full = full_line();
        let text = serde_json::to_vec(&full).unwrap();
        let (line, view) = (parse_line(&text).unwrap(), LineView::parse(&text).unwrap());
        assert_eq!(line.key().hash(), view.key().hash());
        assert_eq!(view.output.as_deref(), Some("out \\ put"));
        assert_eq!(view.vars.map(RawValue::get), Some(line.vars.get()));
        let others = [
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
            json!("x"),
            json!([1]),
            json!({"k": 1}),
        ];
        for field in full.keys() {
            let mut removed = full.clone();
            removed.remove(field);
            let mut cases = vec![removed];
            for other in &others {
                let mut changed = full.clone();
                changed.insert(field.clone(), other.clone());
                cases.push(changed);
            }
            for case in cases {
                let text = serde_json::to_vec(&case).unwrap();
                assert_eq!(
                    parse_line(&text).is_ok(),
                    LineView::parse(&text).is_ok(),
                    "{}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
        // The same words in a warning (an array is refused as well, worded with the Rust name).
        for bad in [&b""[..], b"  ", b"{", b"5", b"\"x\"", b"{\"id\":\"1\"}"] {
            assert_eq!(parse_line(bad).err(), LineView::parse(bad).err());
        }
        assert!(LineView::parse(b"[]").is_err());
    }
}
