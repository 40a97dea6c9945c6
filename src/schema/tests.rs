use super::*;
use serde_json::json;

fn review() -> Schema {
    let s = json!({
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "topics": {"type": "array", "items": {"type": "string"}},
            "sarcastic": {"type": "boolean"},
            "summary": {"type": "string"}
        },
        "required": ["sentiment", "topics", "sarcastic"],
        "additionalProperties": false
    });
    let order: Vec<String> = ["sentiment", "topics", "sarcastic", "summary"]
        .map(String::from)
        .to_vec();
    Schema::compile(&s, &order, "review.json").unwrap()
}

#[test]
fn properties_keep_the_given_order_and_kinds() {
    let s = review();
    let got: Vec<(&str, FieldKind)> = s
        .properties()
        .iter()
        .map(|p| (p.name.as_str(), p.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("sentiment", FieldKind::Enum),
            ("topics", FieldKind::Other),
            ("sarcastic", FieldKind::Boolean),
            ("summary", FieldKind::String)
        ]
    );
}

#[test]
fn an_invalid_schema_is_refused_naming_its_source() {
    let err = Schema::compile(&json!({"type": "strnig"}), &[], "schemas/x.json").unwrap_err();
    assert!(
        err.starts_with("schemas/x.json: not a valid JSON Schema"),
        "{err}"
    );
    let err = Schema::compile(&json!({"minimum": "3"}), &[], "s").unwrap_err();
    assert!(err.contains("not a valid JSON Schema"), "{err}");
}

#[test]
fn a_valid_reply_parses_fenced_or_not() {
    let s = review();
    let plain = r#"{"sentiment":"positive","topics":["price"],"sarcastic":false}"#;
    assert_eq!(
        s.check(Some(plain), Some("stop")).unwrap()["sentiment"],
        "positive"
    );
    let fenced = format!("```json\n{plain}\n```");
    assert!(s.check(Some(&fenced), Some("stop")).is_ok());
    let bare_fence = format!("```\n{plain}\n```");
    assert!(s.check(Some(&bare_fence), None).is_ok());
}

#[test]
fn invalid_replies_say_why() {
    let s = review();
    let e = s
        .check(Some("I think it is positive."), Some("stop"))
        .unwrap_err();
    assert!(e.message.starts_with("the reply is not JSON"), "{e:?}");
    assert!(!e.cut);
    let e = s
        .check(
            Some(r#"{"sentiment":"great","topics":[],"sarcastic":false}"#),
            Some("stop"),
        )
        .unwrap_err();
    assert!(e.message.contains("/sentiment"), "{e:?}");
    assert!(e.message.contains("great"), "{e:?}");
    let e = s
        .check(Some(r#"{"sentiment":"positive","top"#), Some("length"))
        .unwrap_err();
    assert!(e.cut);
    assert!(e.message.contains("raise max_tokens"), "{e:?}");
    let e = s.check(None, Some("stop")).unwrap_err();
    assert!(e.message.contains("not JSON"), "{e:?}");
}

#[test]
fn unfence_leaves_other_text_alone() {
    assert_eq!(unfence("  {\"a\":1} "), "{\"a\":1}");
    assert_eq!(unfence("```json{\"a\":1}```"), "{\"a\":1}");
    assert_eq!(unfence("```json {\"a\":1}"), "```json {\"a\":1}");
}
