//! Streaming JSONL reader: one JSON object per line.
//!
//! Shapes (docs/contract.md §3): `{"id", "prompt"}` and any other object are template variables;
//! `{"id", "messages": [..]}` brings its own messages; an OpenAI Batch line
//! (`{"custom_id", "method", "url", "body"}`) brings its whole request. A bad line is reported
//! and reading goes on with the next one.

use hashbrown::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{InputError, Row, RowBody};

type Source = Box<dyn Read + Send>;

/// Rows of a JSONL file.
pub(super) struct JsonlRows {
    path: PathBuf,
    reader: BufReader<Source>,
    buf: Vec<u8>,
    line: u64,
    id_column: Option<String>,
    columns: Vec<String>,
    seen: HashSet<String>,
    done: bool,
    /// The conversion hint was given once (on the first line that is not UTF-8).
    hinted: bool,
}

impl JsonlRows {
    /// Starts reading; a stream with no bytes at all is an error.
    pub(super) fn new(
        path: &Path,
        source: Source,
        id_column: Option<&str>,
    ) -> Result<JsonlRows, InputError> {
        let mut reader = BufReader::with_capacity(64 * 1024, source);
        let head = reader
            .fill_buf()
            .map_err(|e| InputError::new(path, 0, format!("cannot read the input: {e}")))?;
        if let Some(encoding) = super::encoding::utf16_by_bom(head) {
            let hint = super::encoding::convert_hint(path, encoding);
            return Err(InputError::new(path, 0, hint));
        }
        if head.is_empty() {
            return Err(InputError::new(
                path,
                0,
                "file is empty: a JSONL file needs one JSON object per line",
            ));
        }
        Ok(JsonlRows {
            path: path.to_path_buf(),
            reader,
            buf: Vec::new(),
            line: 0,
            id_column: id_column.map(str::to_owned),
            columns: Vec::new(),
            seen: HashSet::new(),
            done: false,
            hinted: false,
        })
    }

    /// The union of top-level keys seen so far, in first-seen order.
    pub(super) fn columns(&self) -> Vec<String> {
        self.columns.clone()
    }

    /// The next line as a row, or what is wrong with it.
    pub(super) fn next(&mut self) -> Option<Result<Row, InputError>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                let msg = format!("cannot read the input: {e}");
                return Some(Err(InputError::new(&self.path, self.line + 1, msg)));
            }
        }
        self.line += 1;
        let mut text: &[u8] = &self.buf;
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
        if self.line == 1 {
            text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        }
        let index = self.line - 1;
        let parsed = parse_object(text).and_then(|obj| {
            let (id, body) = shape(&obj, self.id_column.as_deref(), index)?;
            Ok((obj, id, body))
        });
        let (obj, id, body) = match parsed {
            Ok(p) => p,
            Err(mut msg) => {
                if !self.hinted && std::str::from_utf8(text).is_err() {
                    self.hinted = true;
                    let encoding = super::encoding::guess_single_byte(text);
                    msg = format!(
                        "{msg}: {}",
                        super::encoding::convert_hint(&self.path, encoding)
                    );
                }
                return Some(Err(InputError::new(&self.path, self.line, msg)));
            }
        };
        if obj.keys().any(|k| !self.seen.contains(k)) {
            // New keys are rare after the first lines: only then read the line's key order.
            for key in key_order(text) {
                if self.seen.insert(key.clone()) {
                    self.columns.push(key);
                }
            }
        }
        let raw_numbers = raw_numbers(&obj, text);
        Some(Ok(Row {
            id,
            line: self.line,
            index,
            vars: obj,
            body,
            raw_numbers,
        }))
    }
}

/// The top-level numbers whose JSON text is not their shortest form (a second, borrowed parse
/// of the line, only when it has a non-integer number).
fn raw_numbers(obj: &Map<String, Value>, text: &[u8]) -> Vec<(String, String)> {
    let is_float = |v: &Value| matches!(v, Value::Number(n) if !n.is_i64() && !n.is_u64());
    if !obj.values().any(is_float) {
        return Vec::new();
    }
    let Ok(raw) = serde_json::from_slice::<
        std::collections::HashMap<std::borrow::Cow<'_, str>, &serde_json::value::RawValue>,
    >(text) else {
        return Vec::new();
    };
    obj.iter()
        .filter(|(_, v)| is_float(v))
        .filter_map(|(k, v)| {
            let written = raw.get(k.as_str())?.get().trim();
            // Compare texts: `Value == str` would compare against a JSON string.
            let shortest = v.to_string();
            (written != shortest).then(|| (k.clone(), written.to_string()))
        })
        .collect()
}

/// One line as a JSON object, or the message saying why not.
fn parse_object(text: &[u8]) -> Result<Map<String, Value>, String> {
    if let Err(e) = std::str::from_utf8(text) {
        return Err(format!("invalid UTF-8 at column {}", e.valid_up_to() + 1));
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err("blank line: every line must hold one JSON object".into());
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "not a JSON object: found {}; every line must hold one JSON object",
            kind(&other)
        )),
        Err(e) => {
            let full = e.to_string();
            let msg = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(m, _)| m);
            Err(format!("not valid JSON: {msg} (column {})", e.column()))
        }
    }
}

/// The row's id and body, from its shape.
fn shape(
    obj: &Map<String, Value>,
    id_column: Option<&str>,
    index: u64,
) -> Result<(String, RowBody), String> {
    let batch_keys = ["body", "url", "method"];
    if obj.contains_key("custom_id") && batch_keys.iter().any(|k| obj.contains_key(*k)) {
        return batch_line(obj);
    }
    let id = match id_column {
        Some(key) => match obj.get(key) {
            Some(v) => id_text(key, v)?,
            None => return Err(format!("id field '{key}' is missing")),
        },
        None => match obj.get("id") {
            Some(v) => id_text("id", v)?,
            None => (index + 1).to_string(),
        },
    };
    match obj.get("messages") {
        Some(m) => Ok((id, RowBody::Messages(messages("messages", m)?))),
        None => Ok((id, RowBody::Vars)),
    }
}

/// An OpenAI Batch line: `custom_id` is the id, `body` the request.
fn batch_line(obj: &Map<String, Value>) -> Result<(String, RowBody), String> {
    let id = id_text("custom_id", &obj["custom_id"])?;
    if let Some(method) = obj.get("method")
        && !method
            .as_str()
            .is_some_and(|m| m.eq_ignore_ascii_case("POST"))
    {
        return Err(format!(
            "batch line: `method` must be \"POST\", found {method}"
        ));
    }
    if let Some(url) = obj.get("url")
        && !url.as_str().is_some_and(is_chat_completions)
    {
        return Err(format!(
            "batch line: `url` must be \"/v1/chat/completions\", found {url}"
        ));
    }
    let Some(body) = obj.get("body") else {
        return Err("batch line: no `body` (the chat completion request)".into());
    };
    let Some(body) = body.as_object() else {
        return Err(format!(
            "batch line: `body` must be an object (the chat completion request), found {}",
            kind(body)
        ));
    };
    match body.get("messages") {
        Some(m) => messages("body.messages", m)?,
        None => return Err("batch line: `body` has no `messages` array".into()),
    };
    Ok((id, RowBody::Batch(body.clone())))
}

/// `/v1/chat/completions`, `/chat/completions`, a full URL ending so, with or without a query.
fn is_chat_completions(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    path.trim_end_matches('/').ends_with("/chat/completions")
}

/// A message list: an array of objects, each with a string `role`.
fn messages(key: &str, value: &Value) -> Result<Vec<Value>, String> {
    let Some(items) = value.as_array() else {
        return Err(format!(
            "`{key}` must be an array of message objects, found {}",
            kind(value)
        ));
    };
    for (i, item) in items.iter().enumerate() {
        if !item.get("role").is_some_and(Value::is_string) {
            return Err(format!(
                "`{key}` item {} must be an object with a string `role`",
                i + 1
            ));
        }
    }
    Ok(items.clone())
}

/// An id value as text: strings as they are, numbers as written (`17`, `1.5`).
fn id_text(key: &str, value: &Value) -> Result<String, String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(format!(
                "id field '{key}' must be a string or a number, found {}",
                kind(other)
            ));
        }
    };
    if text.is_empty() {
        return Err(format!("id field '{key}' is empty"));
    }
    Ok(text)
}

/// "an array", "a string", .. for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level keys of a JSON object line, in the order written (the parsed map is sorted).
fn key_order(text: &[u8]) -> Vec<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    de.deserialize_map(Keys).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Row, String>> {
        let source: Source = Box::new(std::io::Cursor::new(text.as_bytes().to_vec()));
        let mut r = JsonlRows::new(Path::new("t.jsonl"), source, None).unwrap();
        std::iter::from_fn(|| r.next())
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn shapes() {
        let got = read(concat!(
            "{\"id\":17,\"prompt\":\"hi\"}\r\n",
            "{\"id\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n",
            "{\"text\":\"t\"}\n",
            "{\"custom_id\":\"c1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",",
            "\"body\":{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"y\"}]}}"
        ));
        let ids: Vec<&str> = got
            .iter()
            .map(|r| r.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(ids, ["17", "b", "3", "c1"]);
        assert!(matches!(got[1].as_ref().unwrap().body, RowBody::Messages(ref m) if m.len() == 1));
        assert!(
            matches!(got[3].as_ref().unwrap().body, RowBody::Batch(ref b) if b["model"] == "m")
        );
        assert_eq!(got[3].as_ref().unwrap().vars.len(), 4);
    }

    #[test]
    fn errors_name_the_line_and_reading_goes_on() {
        let got = read("{\"a\":1}\n\n[1]\n{\"a\":\n{\"id\":true}\n{\"a\":2}\n");
        let errs: Vec<&str> = got
            .iter()
            .filter_map(|r| r.as_ref().err().map(|s| s.as_str()))
            .collect();
        assert_eq!(
            errs[0],
            "t.jsonl:2: blank line: every line must hold one JSON object"
        );
        assert_eq!(
            errs[1],
            "t.jsonl:3: not a JSON object: found an array; every line must hold one JSON object"
        );
        assert_eq!(
            errs[2],
            "t.jsonl:4: not valid JSON: EOF while parsing a value (column 5)"
        );
        assert_eq!(
            errs[3],
            "t.jsonl:5: id field 'id' must be a string or a number, found a boolean"
        );
        assert_eq!(got.len(), 6);
        assert!(got[5].is_ok());
    }

    #[test]
    fn columns_keep_first_seen_order() {
        let source: Source = Box::new(std::io::Cursor::new(
            b"{\"z\":1,\"a\":2}\n{\"m\":3,\"a\":1}\n".to_vec(),
        ));
        let mut r = JsonlRows::new(Path::new("t.jsonl"), source, None).unwrap();
        while r.next().is_some() {}
        assert_eq!(r.columns(), ["z", "a", "m"]);
    }

    #[test]
    fn number_ids_render_as_written() {
        let got = read("{\"id\":1.5}\n{\"id\":-3}\n");
        assert_eq!(got[0].as_ref().unwrap().id, "1.5");
        assert_eq!(got[1].as_ref().unwrap().id, "-3");
    }

    #[test]
    fn numbers_keep_the_text_they_were_written_as() {
        let got =
            read("{\"id\":1,\"price\":1.50,\"big\":2e3,\"n\":7,\"x\":0.25}\n{\"id\":2,\"n\":1}\n");
        let r = got[0].as_ref().unwrap();
        let mut raw = r.raw_numbers.clone();
        raw.sort();
        assert_eq!(
            raw,
            vec![
                ("big".to_string(), "2e3".to_string()),
                ("price".to_string(), "1.50".to_string())
            ]
        );
        assert!(got[1].as_ref().unwrap().raw_numbers.is_empty());
    }
}
