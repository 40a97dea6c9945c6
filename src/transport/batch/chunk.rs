//! A chunk: the requests of one model sent as one batch, at most `max_requests` of them and
//! `max_bytes` of body. The body is written as it grows, `endpoint` and `model` first (the API
//! refuses a body whose `requests` comes before them):
//! `{"endpoint":"/v1/chat/completions","model":M,"requests":[{"custom_id":C,"body":B},...]}`.

use bytes::Bytes;

/// The endpoint every chunk's requests go to.
pub const ENDPOINT: &str = "/v1/chat/completions";

/// A chunk being filled: its requests' JSON and what the caller keeps of each item.
#[derive(Debug)]
pub struct Chunk<T> {
    /// The model of every request (the job's slug).
    pub model: String,
    head: String,
    requests: String,
    /// Each item's `custom_id` and the caller's data, in order.
    pub items: Vec<(String, T)>,
    max_requests: usize,
    max_bytes: u64,
}

impl<T> Chunk<T> {
    /// An empty chunk of `model`, sent with `batch_model` as the batch-level model.
    pub fn new(model: &str, batch_model: &str, max_requests: usize, max_bytes: u64) -> Chunk<T> {
        let head = format!(
            "{{\"endpoint\":{},\"model\":{},\"requests\":[",
            json_str(ENDPOINT),
            json_str(batch_model)
        );
        Chunk {
            model: model.to_string(),
            head,
            requests: String::new(),
            items: Vec::new(),
            max_requests,
            max_bytes,
        }
    }

    /// The JSON of one request.
    pub fn request_json(custom_id: &str, body: &[u8]) -> String {
        format!(
            "{{\"custom_id\":{},\"body\":{}}}",
            json_str(custom_id),
            String::from_utf8_lossy(body)
        )
    }

    /// Whether a request of this JSON still fits (an empty chunk takes any one request: a
    /// request bigger than the limit alone is sent and refused by the server, not lost here).
    pub fn fits(&self, request_json: &str) -> bool {
        if self.items.is_empty() {
            return true;
        }
        let bytes = self.head.len() + self.requests.len() + 1 + request_json.len() + 2;
        self.items.len() < self.max_requests && bytes as u64 <= self.max_bytes
    }

    /// Adds a request (check [`Chunk::fits`] first).
    pub fn push(&mut self, custom_id: String, request_json: &str, data: T) {
        if !self.items.is_empty() {
            self.requests.push(',');
        }
        self.requests.push_str(request_json);
        self.items.push((custom_id, data));
    }

    /// Requests in the chunk.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No request yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The body to `POST`.
    pub fn body(&self) -> Bytes {
        let mut s = String::with_capacity(self.head.len() + self.requests.len() + 2);
        s.push_str(&self.head);
        s.push_str(&self.requests);
        s.push_str("]}");
        Bytes::from(s)
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_model_come_before_requests_and_limits_hold() {
        let mut c: Chunk<u32> = Chunk::new("m", "m:batch", 2, 10_000);
        for i in 0..2 {
            let r = Chunk::<u32>::request_json(&format!("c{i}"), br#"{"model":"m","messages":[]}"#);
            assert!(c.fits(&r));
            c.push(format!("c{i}"), &r, i);
        }
        assert!(!c.fits("{}"), "max_requests");
        let body = String::from_utf8(c.body().to_vec()).expect("utf-8");
        assert!(
            body.starts_with(
                r#"{"endpoint":"/v1/chat/completions","model":"m:batch","requests":["#
            )
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(v["requests"][1]["custom_id"], "c1");
        assert_eq!(v["requests"][1]["body"]["model"], "m");
        let mut small: Chunk<()> = Chunk::new("m", "m", 10, 120);
        let r = Chunk::<()>::request_json("c", &[b'1'; 40]);
        assert!(small.fits(&r), "the first always fits");
        small.push("c".into(), &r, ());
        assert!(!small.fits(&r), "max_bytes");
    }
}
