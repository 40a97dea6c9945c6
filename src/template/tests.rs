//! Tests of prompt rendering.
use super::*;

fn row(vars: Value, body: RowBody) -> Row {
    let Value::Object(vars) = vars else {
        panic!("test vars must be an object")
    };
    Row {
        id: "1".into(),
        line: 2,
        index: 0,
        vars,
        body,
        raw_numbers: Vec::new(),
    }
}

#[test]
fn numbers_render_as_written() {
    let t = Template::new(
        None,
        Some("{{ price }} | {{ big }} | {{ price * 2 }} | {{ n }}"),
    )
    .unwrap();
    let mut r = row(json!({"price": 1.5, "big": 2000.0, "n": 3}), RowBody::Vars);
    r.raw_numbers = vec![
        ("price".into(), "1.50".into()),
        ("big".into(), "2e3".into()),
    ];
    let m = t.messages(&r).unwrap();
    assert_eq!(m[0]["content"], "1.50 | 2e3 | 3.0 | 3");
}

fn user(t: &Template, vars: Value) -> Result<Value, String> {
    let m = t.messages(&row(vars, RowBody::Vars))?;
    Ok(m[m.len() - 1]["content"].clone())
}

#[test]
fn renders_system_and_user_without_escaping() {
    let t = Template::new(Some("You are {{ who }}."), Some("Q: {{ text }} <b>&</b>")).unwrap();
    let m = t
        .messages(&row(
            json!({"who": "kind", "text": "a < b & \"c\""}),
            RowBody::Vars,
        ))
        .unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "You are kind."}));
    assert_eq!(
        m[1],
        json!({"role": "user", "content": "Q: a < b & \"c\" <b>&</b>"})
    );
    assert_eq!(t.variables(), ["who", "text"]);
}

#[test]
fn numbers_render_as_json_writes_them() {
    let t = Template::new(None, Some("{{ a }} {{ b }} {{ c }} {{ d }} {{ e.f }}")).unwrap();
    let v = serde_json::from_str(
        r#"{"a":17,"b":1.50,"c":1e-7,"d":18446744073709551615,"e":{"f":2.5}}"#,
    )
    .unwrap();
    assert_eq!(user(&t, v).unwrap(), "17 1.5 1e-7 18446744073709551615 2.5");
}

#[test]
fn missing_and_null_variables_are_errors() {
    let t = Template::new(None, Some("{{ text }}")).unwrap();
    assert_eq!(
        user(&t, json!({"id": "1", "body": "x"})).unwrap_err(),
        "template variable 'text' is missing from this row (columns: body, id; \
         `{{ row[\"a column\"] }}` reads any column by its name)"
    );
    assert_eq!(
        user(&t, json!({"text": null})).unwrap_err(),
        "template variable 'text' is null"
    );
    let t = Template::new(
        None,
        Some("{% if x is defined %}{{ x }}{% else %}-{% endif %}"),
    )
    .unwrap();
    assert_eq!(user(&t, json!({})).unwrap(), "-");
}

#[test]
fn the_whole_row_is_row_unless_a_column_is_named_row() {
    let t = Template::new(None, Some("{{ row[\"Product Name\"] }}/{{ row.id }}")).unwrap();
    assert_eq!(
        user(&t, json!({"Product Name": "Tea", "id": "7"})).unwrap(),
        "Tea/7"
    );
    let t = Template::new(None, Some("{{ row }}")).unwrap();
    assert_eq!(user(&t, json!({"row": "mine"})).unwrap(), "mine");
    let t = Template::new(None, Some("{{ Product }}")).unwrap();
    let r = row(json!({"Product Name": "Tea"}), RowBody::Vars);
    assert_eq!(t.missing_variable(&r), Some("Product"));
    let r = row(json!({"Product": "Tea"}), RowBody::Vars);
    assert_eq!(t.missing_variable(&r), None);
}

#[test]
fn rows_own_prompt() {
    let t = Template::new(None, None).unwrap();
    assert_eq!(
        user(&t, json!({"prompt": "hi {{ x }}"})).unwrap(),
        "hi {{ x }}"
    );
    assert_eq!(user(&t, json!({"prompt": [1, 2]})).unwrap(), "[1,2]");
    assert_eq!(
        user(&t, json!({"text": "x"})).unwrap_err(),
        "no prompt: set request.prompt or give each row a `prompt` field"
    );
    assert_eq!(t.variables(), ["prompt"]);
}

#[test]
fn message_rows_get_the_system_message_unless_they_have_one() {
    let t = Template::new(Some("sys"), Some("unused {{ nope }}")).unwrap();
    let own = vec![json!({"role": "user", "content": "u"})];
    let m = t
        .messages(&row(json!({}), RowBody::Messages(own.clone())))
        .unwrap();
    assert_eq!(
        m,
        vec![json!({"role": "system", "content": "sys"}), own[0].clone()]
    );
    let with_sys = vec![json!({"role": "system", "content": "mine"}), own[0].clone()];
    let m = t
        .messages(&row(json!({}), RowBody::Messages(with_sys.clone())))
        .unwrap();
    assert_eq!(m, with_sys);
    let Value::Object(body) = json!({"model": "m", "messages": own.clone()}) else {
        unreachable!()
    };
    assert_eq!(
        t.messages(&row(json!({}), RowBody::Batch(body))).unwrap(),
        own
    );
}

#[test]
fn syntax_errors_name_the_template_and_line() {
    let e = Template::new(Some("ok"), Some("line one\n{{ text ")).unwrap_err();
    assert!(e.starts_with("prompt template: syntax error"), "{e}");
    assert!(e.contains("prompt:2"), "{e}");
    let e = Template::new(Some("{% if %}"), None).unwrap_err();
    assert!(e.starts_with("system template: syntax error"), "{e}");
}

#[test]
fn nested_loops_stop_at_the_work_limit() {
    let t = Template::new(
        None,
        Some("{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}{{ text }}{% endfor %}{% endfor %}{% endfor %}"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = user(&t, json!({"text": "x"})).unwrap_err();
    assert!(
        e.starts_with("prompt template: rendering this row passed the limit"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // A large but plain row is within the limit.
    let t = Template::new(None, Some("{{ text }}")).unwrap();
    let big = "y".repeat(32 << 20);
    assert_eq!(
        user(&t, json!({"text": big}))
            .unwrap()
            .as_str()
            .map(str::len),
        Some(32 << 20)
    );
}

#[test]
fn template_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
}
