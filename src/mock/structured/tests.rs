use super::*;
use crate::schema::Schema;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "sarcastic": {"type": "boolean"},
            "stars": {"type": "integer", "minimum": 1, "maximum": 5},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "quote": {"type": "string", "maxLength": 20},
            "meta": {"type": "object", "properties": {"lang": {"enum": ["en", "fr"]}},
                     "required": ["lang"], "additionalProperties": false}
        },
        "required": ["sentiment", "topics", "sarcastic", "stars", "confidence", "quote", "meta"],
        "additionalProperties": false
    })
}

fn msgs(text: &str) -> Value {
    json!([{"role": "system", "content": "Label."}, {"role": "user", "content": text}])
}

#[test]
fn answers_validate_and_use_the_classifier() {
    let compiled = Schema::compile(&schema(), &[], "s").unwrap();
    let cfg = MockConfig::default();
    for (i, text) in [
        "Battery lasts two days, very happy.",
        "Arrived broken.",
        "Okay.",
    ]
    .iter()
    .enumerate()
    {
        let model = ["a/one", "b/two", "c/three"][i];
        let (content, n, finish) = answer(&cfg, model, &msgs(text), &schema(), None);
        assert_eq!(finish, "stop");
        assert!(n > 0);
        let v = compiled.check(Some(&content), Some(finish)).unwrap();
        assert_eq!(v["sentiment"], label_for(model, text, text));
        let again = answer(&cfg, model, &msgs(text), &schema(), None);
        assert_eq!(again.0, content, "deterministic");
    }
}

#[test]
fn fault_flags_make_invalid_replies_and_turns_limit_them() {
    let compiled = Schema::compile(&schema(), &[], "s").unwrap();
    let m = msgs("Great value, works fine.");
    for (cfg, cut) in [
        (
            MockConfig {
                schema_enum_rate: 1.0,
                ..MockConfig::default()
            },
            false,
        ),
        (
            MockConfig {
                schema_prose_rate: 1.0,
                ..MockConfig::default()
            },
            false,
        ),
        (
            MockConfig {
                schema_truncated_rate: 1.0,
                ..MockConfig::default()
            },
            true,
        ),
    ] {
        let (content, _, finish) = answer(&cfg, "a/b", &m, &schema(), None);
        let e = compiled.check(Some(&content), Some(finish)).unwrap_err();
        assert_eq!(e.cut, cut, "{content}: {e:?}");
        let limited = MockConfig {
            schema_fault_turns: 1,
            ..cfg
        };
        let mut reask = m.clone();
        let list = reask.as_array_mut().unwrap();
        list.push(json!({"role": "assistant", "content": content}));
        list.push(json!({"role": "user", "content": "fix it"}));
        assert!(fault_for(&limited, "a/b", &reask).is_none());
        let (again, _, finish) = answer(&limited, "a/b", &reask, &schema(), None);
        assert!(
            compiled.check(Some(&again), Some(finish)).is_ok(),
            "{again}"
        );
    }
}

#[test]
fn max_tokens_cuts_the_object() {
    let (content, n, finish) = answer(
        &MockConfig::default(),
        "a/b",
        &msgs("hi there"),
        &schema(),
        Some(3),
    );
    assert_eq!((n, finish), (3, "length"));
    assert_eq!(content.len(), 12);
}

#[test]
fn response_format_is_read() {
    let body = |v: Value| v.as_object().unwrap().clone();
    let s = requested_schema(&body(json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "x", "strict": true, "schema": {"type": "object"}}},
        "provider": {"require_parameters": true}})));
    assert_eq!(s.unwrap(), Some(json!({"type": "object"})));
    assert_eq!(requested_schema(&body(json!({}))).unwrap(), None);
    assert!(requested_schema(&body(json!({"provider": {"require_parameters": "yes"}}))).is_err());
    assert!(requested_schema(&body(json!({"response_format": {"type": "json_schema"}}))).is_err());
}
