//! Micro-benchmarks of the per-request hot functions, so a regression shows in one place:
//! `cargo bench --bench hot` (criterion). The end-to-end comparison with bare HTTP is
//! `scripts/bench-floor.sh`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orbatch::input::{Row, RowBody};
use orbatch::job::RequestSpec;
use orbatch::output::RawJson;
use orbatch::output::line::LineBuilder;
use orbatch::request::BodyBuilder;
use orbatch::template::Template;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// A row like the benchmark's input: an id and a prompt of a few dozen words.
fn row() -> Row {
    let mut vars = Map::new();
    vars.insert("id".into(), json!(1234));
    let prompt = "Row 1234: the quick brown fox jumps over the lazy dog while counting tokens \
                  and dollars the quick brown fox jumps over the lazy dog";
    vars.insert("prompt".into(), json!(prompt));
    Row {
        id: "1234".into(),
        line: 1235,
        index: 1234,
        vars,
        body: RowBody::Vars,
        raw_numbers: Vec::new(),
    }
}

/// A chat completion as OpenRouter answers it (usage included).
const ANSWER: &[u8] = br#"{"id":"gen-1733000000-abcdefghijklmnop","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion","created":1733000000,"choices":[{"logprobs":null,"finish_reason":"stop","native_finish_reason":"stop","index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog.","refusal":null,"reasoning":null}}],"usage":{"prompt_tokens":31,"completion_tokens":11,"total_tokens":42,"cost":0.0000112,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

fn hot(c: &mut Criterion) {
    let row = row();
    let template = Template::new(Some("You are terse."), None).expect("a valid template");
    c.bench_function("template render", |b| {
        b.iter(|| template.messages(black_box(&row)))
    });

    let spec = RequestSpec {
        models: vec!["openai/gpt-4o-mini".into()],
        system: Some("You are terse.".into()),
        prompt: None,
        max_tokens: Some(16),
        temperature: Some(0.0),
        extra: Map::new(),
        aliases: Vec::new(),
    };
    let bodies = BodyBuilder::new(&spec);
    let messages: Vec<Value> = template.messages(&row).expect("renders");
    c.bench_function("request body build", |b| {
        b.iter(|| bodies.body(black_box(&row), "openai/gpt-4o-mini", black_box(&messages)))
    });

    let headers = reqwest::header::HeaderMap::new();
    c.bench_function("parse chat completion", |b| {
        b.iter(|| orbatch::transport::parse_chat(200, &headers, black_box(ANSWER)))
    });

    let vars = RawJson::of(&row.vars);
    // As the journal writes it: into a reused buffer, by `ResultLine::write_json`.
    let mut buf = Vec::with_capacity(4096);
    c.bench_function("result line build + serialise", |b| {
        b.iter(|| {
            let line = LineBuilder::new(black_box("1234"), "openai/gpt-4o-mini")
                .vars(vars.clone())
                .counts(Some(Decimal::new(112, 7)), 1, (0, Decimal::ZERO), 0)
                .latency_ms(52)
                .ok("The quick brown fox jumps over the lazy dog.")
                .build();
            buf.clear();
            line.write_json(&mut buf);
            buf.len()
        })
    });
}

criterion_group!(benches, hot);
criterion_main!(benches);
