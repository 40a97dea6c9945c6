//! The mock's judge: a request whose `response_format` asks for `{score, reason}` (an
//! orbatch `judge` check) is answered with valid JSON and a deterministic grade.
//!
//! The rubric convention the mock reads: a line `Output: ...` (the judged answer) and a line
//! `Expected: ...` (the reference). Equal (case, whitespace and a trailing period aside): score
//! 1.0; different: 0.0 to 0.3, fixed by the text. Without both lines the grade is drawn from
//! the rubric's hash.

use serde_json::Value;

/// The reply to a judge request of `model` (content, completion tokens), or `None` when
/// `format` does not ask for `{score, reason}`.
pub(crate) fn reply(
    cfg: &super::MockConfig,
    model: &str,
    format: Option<&Value>,
    messages: &Value,
) -> Option<(String, u64)> {
    let props = &format?["json_schema"]["schema"]["properties"];
    if props.get("score").is_none() || props.get("reason").is_none() {
        return None;
    }
    // The rubric is the first user message (a re-ask appends the reply and a correction).
    let rubric = messages.as_array()?.iter().find(|m| m["role"] == "user")?["content"].as_str()?;
    let field = |name: &str| {
        rubric.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| norm(v))
        })
    };
    let b = *blake3::hash(rubric.as_bytes()).as_bytes();
    let (score, reason) = match (field("output"), field("expected")) {
        (Some(out), Some(want)) if out == want => (1.0, "the answer matches the reference"),
        (Some(_), Some(_)) => (
            f64::from(b[0] % 4) / 10.0,
            "the answer differs from the reference",
        ),
        _ => (f64::from(b[0] % 11) / 10.0, "graded on the rubric"),
    };
    let text = match super::structured::fault_for(cfg, model, messages) {
        Some(_) => format!("The answer looks {reason}; I would give it {score}."),
        None => serde_json::json!({"score": score, "reason": reason}).to_string(),
    };
    let tokens = text.split_whitespace().count() as u64;
    Some((text, tokens))
}

fn norm(v: &str) -> String {
    let t = v.trim();
    t.strip_suffix('.').unwrap_or(t).trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_judge_request_gets_a_valid_deterministic_grade() {
        let format = json!({"type": "json_schema", "json_schema": {"schema": {"properties": {"score": {}, "reason": {}}}}});
        let cfg = super::super::MockConfig::default();
        let ask = |rubric: &str| {
            let messages = json!([{"role": "user", "content": rubric}]);
            let (text, _) = reply(&cfg, "m", Some(&format), &messages).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["score"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(ask("Output: Positive.\nExpected: positive"), 1.0);
        let wrong = ask("Output: negative\nExpected: positive");
        assert!((0.0..=0.3).contains(&wrong), "{wrong}");
        assert_eq!(wrong, ask("Output: negative\nExpected: positive"));
        assert!(reply(&cfg, "m", None, &json!([])).is_none());
        // A prose fault: every first reply is prose, a re-ask (one assistant turn) is JSON.
        let prose = super::super::MockConfig {
            schema_prose_rate: 1.0,
            schema_fault_turns: 1,
            ..Default::default()
        };
        let first = json!([{"role": "user", "content": "Output: a\nExpected: a"}]);
        let (text, _) = reply(&prose, "m", Some(&format), &first).unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
        let again = json!([
            {"role": "user", "content": "Output: a\nExpected: a"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "Your reply is not valid"}
        ]);
        let (text, _) = reply(&prose, "m", Some(&format), &again).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["score"], 1.0);
    }
}
