//! The mock's judge: a request whose `response_format` asks for `{score, reason}` (an
//! orbatch `judge` check) is answered with valid JSON and a deterministic grade.
//!
//! The rubric convention the mock reads: a line `Output: ...` (the judged answer) and a line
//! `Expected: ...` (the reference). Equal (case, whitespace and a trailing period aside): score
//! 1.0; different: 0.0 to 0.3, fixed by the text. Without both lines the grade is drawn from
//! the rubric's hash.

use serde_json::Value;

/// The reply to a judge request (content, completion tokens), or `None` when `format` does
/// not ask for `{score, reason}`.
pub(crate) fn reply(format: Option<&Value>, messages: &Value) -> Option<(String, u64)> {
    let props = &format?["json_schema"]["schema"]["properties"];
    if props.get("score").is_none() || props.get("reason").is_none() {
        return None;
    }
    let rubric = messages
        .as_array()?
        .iter()
        .rev()
        .find(|m| m["role"] == "user")?["content"]
        .as_str()?;
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
    let text = serde_json::json!({"score": score, "reason": reason}).to_string();
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
        let ask = |rubric: &str| {
            let (text, _) =
                reply(Some(&format), &json!([{"role": "user", "content": rubric}])).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["score"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(ask("Output: Positive.\nExpected: positive"), 1.0);
        let wrong = ask("Output: negative\nExpected: positive");
        assert!((0.0..=0.3).contains(&wrong), "{wrong}");
        assert_eq!(wrong, ask("Output: negative\nExpected: positive"));
        assert!(reply(None, &json!([])).is_none());
    }
}
