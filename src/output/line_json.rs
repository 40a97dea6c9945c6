//! [`ResultLine::write_json`]: a result line written as JSON by hand, byte for byte what
//! `serde_json::to_writer` writes for it (same field order, same escapes, same numbers), at a
//! fraction of the cost: the journal writes one per answer. The rare evaluation fields go
//! through serde_json itself. The tests hold the two writers equal.

use std::io::Write;

use rust_decimal::Decimal;

use super::{CostSource, ResultLine, Status};

impl ResultLine {
    /// Appends the line's JSON (no newline) to `out`: the same bytes as
    /// `serde_json::to_writer(out, self)`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        string(out, &self.id);
        out.extend_from_slice(b",\"model\":");
        string(out, &self.model);
        out.extend_from_slice(b",\"variant\":");
        opt_string(out, self.variant.as_deref());
        out.extend_from_slice(match self.status {
            Status::Ok => b",\"status\":\"ok\"",
            Status::Error => b",\"status\":\"error\"",
        });
        let texts: [(&[u8], _); 5] = [
            (b",\"output\":", &self.output),
            (b",\"response_model\":", &self.response_model),
            (b",\"finish_reason\":", &self.finish_reason),
            (b",\"generation_id\":", &self.generation_id),
            (b",\"provider\":", &self.provider),
        ];
        for (key, text) in texts {
            out.extend_from_slice(key);
            opt_string(out, text.as_deref());
        }
        let tokens: [(&[u8], _); 4] = [
            (b",\"prompt_tokens\":", self.prompt_tokens),
            (b",\"completion_tokens\":", self.completion_tokens),
            (b",\"reasoning_tokens\":", self.reasoning_tokens),
            (b",\"cached_tokens\":", self.cached_tokens),
        ];
        for (key, n) in tokens {
            out.extend_from_slice(key);
            opt_number(out, n);
        }
        out.extend_from_slice(b",\"cost_usd\":");
        opt_money(out, self.cost_usd);
        out.extend_from_slice(b",\"cost_source\":");
        out.extend_from_slice(match self.cost_source {
            None => b"null",
            Some(CostSource::Response) => b"\"response\"",
            Some(CostSource::Generation) => b"\"generation\"",
            Some(CostSource::PriceTable) => b"\"price_table\"",
            Some(CostSource::Cache) => b"\"cache\"",
            Some(CostSource::Batch) => b"\"batch\"",
        });
        out.extend_from_slice(b",\"table_cost_usd\":");
        opt_money(out, self.table_cost_usd);
        out.extend_from_slice(b",\"cost_mismatch\":");
        boolean(out, self.cost_mismatch);
        out.extend_from_slice(b",\"latency_ms\":");
        number(out, self.latency_ms);
        out.extend_from_slice(b",\"attempts\":");
        number(out, self.attempts);
        out.extend_from_slice(b",\"unknown_cost_attempts\":");
        number(out, self.unknown_cost_attempts);
        if let Some(max) = self.unknown_cost_max_usd {
            out.extend_from_slice(b",\"unknown_cost_max_usd\":");
            money(out, max);
        }
        out.extend_from_slice(b",\"rate_limited_attempts\":");
        number(out, self.rate_limited_attempts);
        out.extend_from_slice(b",\"error\":");
        match &self.error {
            None => out.extend_from_slice(b"null"),
            Some(e) => {
                out.extend_from_slice(b"{\"kind\":\"");
                out.extend_from_slice(e.kind.as_str().as_bytes());
                out.extend_from_slice(b"\",\"status\":");
                opt_number(out, e.status);
                out.extend_from_slice(b",\"message\":");
                string(out, &e.message);
                out.push(b'}');
            }
        }
        out.extend_from_slice(b",\"vars\":");
        out.extend_from_slice(self.vars.get().as_bytes());
        out.extend_from_slice(b",\"finished_at\":");
        opt_string(out, self.finished_at.as_deref());
        if self.resumable {
            out.extend_from_slice(b",\"resumable\":true");
        }
        if self.cache_hit {
            out.extend_from_slice(b",\"cache_hit\":true");
        }
        if let Some(cost) = self.cached_cost_usd {
            out.extend_from_slice(b",\"cached_cost_usd\":");
            money(out, cost);
        }
        if let Some(parsed) = &self.parsed {
            out.extend_from_slice(b",\"parsed\":");
            match parsed {
                Some(raw) => out.extend_from_slice(raw.get().as_bytes()),
                None => out.extend_from_slice(b"null"),
            }
        }
        if let Some(n) = self.schema_attempts {
            out.extend_from_slice(b",\"schema_attempts\":");
            number(out, n);
        }
        self.write_eval(out);
        out.push(b'}');
    }

    /// The evaluation fields (absent without checks), through serde_json.
    fn write_eval(&self, out: &mut Vec<u8>) {
        fn field<T: serde::Serialize>(out: &mut Vec<u8>, name: &[u8], value: &Option<T>) {
            if let Some(v) = value {
                out.extend_from_slice(name);
                // Writing into a Vec cannot fail; a map key that is not a string cannot
                // occur (every key here is a String).
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
        field(out, b",\"scores\":", &self.scores);
        field(out, b",\"score\":", &self.score);
        field(out, b",\"pass\":", &self.pass);
        field(out, b",\"unscored\":", &self.unscored);
        if let Some(cost) = self.judge_cost_usd {
            out.extend_from_slice(b",\"judge_cost_usd\":");
            money(out, cost);
        }
        field(out, b",\"judge\":", &self.judge);
    }
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_number(out: &mut Vec<u8>, n: Option<impl itoa::Integer>) {
    match n {
        Some(n) => number(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// An amount as `crate::money::serialize` writes it: every digit, no exponent.
fn money(out: &mut Vec<u8>, d: Decimal) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", d.normalize());
}

fn opt_money(out: &mut Vec<u8>, d: Option<Decimal>) {
    match d {
        Some(d) => money(out, d),
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string with serde_json's escapes: `"` and `\` behind a backslash, the control
/// characters as `\b \t \n \f \r` or `\u00xx`, everything else (non-ASCII included) as is.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::eval::judge::JudgeRecord;
    use crate::output::line::LineBuilder;
    use crate::output::{ErrorKind, RawJson};

    fn same(line: &ResultLine) {
        let mut mine = Vec::new();
        line.write_json(&mut mine);
        let serde = serde_json::to_vec(line).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&mine),
            String::from_utf8_lossy(&serde)
        );
    }

    #[test]
    fn every_text_is_escaped_as_serde_json_does() {
        let all: String = (0u8..=0x7F).map(char::from).collect();
        for text in [
            "",
            "plain",
            "\"quoted\" \\ back",
            "é ü 日本 😀",
            "\u{7f}\u{80}\u{2028}\u{2029}",
            all.as_str(),
        ] {
            let mut line = LineBuilder::new(text, text).ok(text).build();
            line.variant = Some(text.to_string());
            line.finish_reason = Some(text.into());
            same(&line);
            same(
                &LineBuilder::new("1", "m")
                    .error(ErrorKind::Provider, Some(502), text)
                    .build(),
            );
        }
    }

    #[test]
    fn every_field_is_written_as_serde_json_does() {
        let d = |n, scale| Some(Decimal::new(n, scale));
        let plain = LineBuilder::new("7", "openai/gpt-4o-mini")
            .counts(d(1515, 8), 3, (2, Decimal::new(5, 3)), 1)
            .latency_ms(144)
            .ok("an answer")
            .build();
        same(&plain);
        same(&LineBuilder::new("1", "m").build());
        for source in [
            CostSource::Response,
            CostSource::Generation,
            CostSource::PriceTable,
            CostSource::Cache,
            CostSource::Batch,
        ] {
            let mut line = plain.clone();
            line.cost_source = Some(source);
            same(&line);
        }
        for kind in [ErrorKind::Input, ErrorKind::RateLimited, ErrorKind::Schema] {
            same(
                &LineBuilder::new("1", "m")
                    .error(kind, None, "no status")
                    .build(),
            );
        }
        let mut full = plain.clone();
        full.variant = Some("terse".into());
        full.response_model = Some("openai/gpt-4o-mini-2024".into());
        full.finish_reason = Some("stop".into());
        full.generation_id = Some("gen-1".into());
        full.provider = Some("OpenAI".into());
        full.prompt_tokens = Some(u64::MAX);
        full.completion_tokens = Some(0);
        full.reasoning_tokens = Some(12);
        full.cached_tokens = Some(3);
        full.cost_usd = d(-120_000, 2);
        full.table_cost_usd = d(1, 28);
        full.cost_mismatch = true;
        full.latency_ms = u64::MAX;
        full.attempts = u32::MAX;
        full.unknown_cost_max_usd = None;
        full.vars = RawJson::of(&serde_json::json!({"a": [1, 2.5, "x\n"], "b": null}));
        full.finished_at = Some("2026-12-02T10:33:41.003132865Z".into());
        full.resumable = true;
        full.cache_hit = true;
        full.cached_cost_usd = d(10, 0);
        full.parsed = Some(Some(RawJson::of(&serde_json::json!({"label": "pos"}))));
        full.schema_attempts = Some(2);
        full.scores = Some(BTreeMap::from([
            ("a".into(), Some(0.5)),
            ("b".into(), None),
        ]));
        full.score = Some(1.0 / 3.0);
        full.pass = Some(false);
        full.unscored = Some(BTreeMap::from([("b".into(), "no \"judge\"".into())]));
        full.judge_cost_usd = d(7, 9);
        let record = JudgeRecord {
            hash: "abc".into(),
            score: Some(0.75),
            reason: Some("fine\n".into()),
            attempts: 2,
        };
        full.judge = Some(BTreeMap::from([("tone".into(), record)]));
        same(&full);
        full.parsed = Some(None);
        full.score = Some(f64::NAN);
        same(&full);
    }

    proptest::proptest! {
        /// Any texts, counts and amounts: the same bytes as serde_json.
        #[test]
        fn any_line_is_written_as_serde_json_does(
            id in proptest::prelude::any::<String>(),
            output in proptest::option::of(proptest::prelude::any::<String>()),
            message in proptest::prelude::any::<String>(),
            tokens in proptest::option::of(proptest::prelude::any::<u64>()),
            status in proptest::option::of(proptest::prelude::any::<u16>()),
            cost in proptest::option::of((proptest::prelude::any::<i64>(), 0u32..=28)),
        ) {
            let cost = cost.map(|(n, scale)| Decimal::new(n, scale));
            let mut line = LineBuilder::new(id.clone(), id)
                .counts(cost, 1, (0, Decimal::ZERO), 0)
                .build();
            line.output = output;
            line.prompt_tokens = tokens;
            line.table_cost_usd = cost;
            same(&line);
            same(&LineBuilder::new("1", "m").error(ErrorKind::Http, status, message).build());
        }
    }
}
