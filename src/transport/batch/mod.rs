//! The batch executor's wire: the provider's Batch API (create, status, result pages), the
//! chunks it is sent in ([`chunk`]), the `custom_id` of each item ([`id`]), and each result
//! item classified into the same [`Attempt`] a live request gives (its `response.body` is a
//! chat completion, read by [`parse_chat`]).
//!
//! The live [`super::Transport`] sends one request and classifies its answer; this one sends a
//! chunk and later classifies its items, so the runner's batch loop
//! (`runner/batch/`) replaces the live loop while the lines, the writer, the cache and the
//! budget stay the same.

pub mod chunk;
pub mod id;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Attempt, Failure, parse_chat};
use crate::client::{CallError, Client};
use crate::output::ErrorKind;
use crate::retry::Verdict;

/// A batch object (`GET {path}/{id}`, and the 202 of a create); optional fields are read
/// leniently.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BatchObject {
    /// The batch id.
    pub id: String,
    /// `validating`, `in_progress`, `finalizing`, `completed`, `failed`, `expired`,
    /// `cancelling`, `cancelled`.
    pub status: String,
    /// Progress counts.
    pub request_counts: Option<Counts>,
    /// Totals, once finished (`cost` is the whole batch's charge).
    pub usage: Option<BatchUsage>,
    /// The result items, inline once finished (absent: read them from the pages).
    pub results: Option<Vec<Box<RawValue>>>,
    /// Why the batch failed.
    pub error: Option<Value>,
}

/// `request_counts`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Counts {
    /// Requests in the batch.
    pub total: u64,
    /// Finished well.
    pub completed: u64,
    /// Finished with an error.
    pub failed: u64,
}

/// A finished batch's `usage`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BatchUsage {
    /// The batch's charge (`None`: not reported, or unusable).
    #[serde(deserialize_with = "lenient_money")]
    pub cost: Option<Decimal>,
}

fn lenient_money<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let raw: Option<&RawValue> = Deserialize::deserialize(d)?;
    Ok(raw
        .and_then(|r| crate::money::parse(r.get()))
        .filter(|c| !c.is_sign_negative()))
}

impl BatchObject {
    /// Whether the batch will change no more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "failed" | "expired" | "cancelled"
        )
    }

    /// Why the batch failed as a whole (`error.message`, else the status).
    pub fn failure(&self) -> String {
        self.error
            .as_ref()
            .and_then(|e| e.get("message").and_then(Value::as_str))
            .map_or_else(
                || format!("the batch ended {}", self.status),
                str::to_string,
            )
    }
}

/// One result item.
#[derive(Debug, Deserialize)]
pub struct ResultItem {
    /// The item's `custom_id`.
    pub custom_id: String,
    /// The answer, when there is one.
    pub response: Option<ItemResponse>,
    /// Why the item failed.
    pub error: Option<Value>,
}

/// `response` of a result item.
#[derive(Debug, Deserialize)]
pub struct ItemResponse {
    /// The HTTP status of the request.
    pub status_code: u16,
    /// The chat completion (or error) body.
    pub body: Box<RawValue>,
}

impl ResultItem {
    /// The item as an attempt's outcome: its response classified as a live answer would be,
    /// or its error as a failure to report (not retried inside the batch).
    pub fn attempt(&self) -> Attempt {
        if let Some(r) = &self.response {
            return parse_chat(r.status_code, &HeaderMap::new(), r.body.get().as_bytes());
        }
        let message = self
            .error
            .as_ref()
            .and_then(|e| e.get("message").and_then(Value::as_str))
            .unwrap_or("the batch item failed with no message")
            .to_string();
        Attempt::Failed(Failure {
            kind: ErrorKind::Provider,
            verdict: Verdict::Fail,
            status: None,
            message: format!("batch item failed: {message}"),
            retry_after: None,
            ambiguous: false,
            partial: None,
        })
    }
}

/// A page of `GET {path}/{id}/results`.
#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<Box<RawValue>>,
    #[serde(default)]
    has_more: bool,
    next_cursor: Option<String>,
}

/// The Batch API of one endpoint.
#[derive(Clone)]
pub struct BatchApi {
    client: Client,
    url: String,
}

impl BatchApi {
    /// The API at `url` (`{base}/batches`), through `client`.
    pub fn new(client: Client, url: String) -> BatchApi {
        BatchApi { client, url }
    }

    /// `POST {path}`: submits a chunk body; the batch object of the 202.
    pub async fn create(&self, body: Bytes) -> Result<BatchObject, CallError> {
        self.client.post_json(&self.url, body).await
    }

    /// `GET {path}/{id}`.
    pub async fn get(&self, id: &str) -> Result<BatchObject, CallError> {
        self.client
            .get_url(&format!("{}/{id}", self.url), &[])
            .await
    }

    /// Every result item of a finished batch: inline when the object has them, else from
    /// `GET {path}/{id}/results`, page after page. Items that cannot be read are skipped
    /// (their keys end as missing from the batch).
    pub async fn items(&self, batch: &BatchObject) -> Result<Vec<ResultItem>, CallError> {
        let raw = match &batch.results {
            Some(inline) => inline.clone(),
            None => self.pages(&batch.id).await?,
        };
        Ok(raw
            .iter()
            .filter_map(|r| match serde_json::from_str::<ResultItem>(r.get()) {
                Ok(item) => Some(item),
                Err(e) => {
                    tracing::warn!("batch {}: unreadable result item skipped: {e}", batch.id);
                    None
                }
            })
            .collect())
    }

    async fn pages(&self, id: &str) -> Result<Vec<Box<RawValue>>, CallError> {
        let url = format!("{}/{id}/results", self.url);
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        // A server that repeats a cursor must not keep us here.
        for _ in 0..100_000 {
            let query: Vec<(&str, &str)> = cursor.iter().map(|c| ("cursor", c.as_str())).collect();
            let page: Page = self.client.get_url(&url, &query).await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(next) if page.has_more && Some(&next) != cursor.as_ref() => {
                    cursor = Some(next)
                }
                _ => return Ok(all),
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_the_attempts_a_live_answer_would() {
        let ok: ResultItem = serde_json::from_str(
            r#"{"custom_id":"k1~1~~m","response":{"status_code":200,"body":{"id":"gen-1","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}},"error":null}"#,
        )
        .expect("item");
        let Attempt::Answered(c) = ok.attempt() else {
            panic!("answered")
        };
        assert_eq!(c.content.as_deref(), Some("hi"));
        assert_eq!(c.cost, None);
        let failed: ResultItem = serde_json::from_str(
            r#"{"custom_id":"x","response":null,"error":{"type":"server_error","message":"boom"}}"#,
        )
        .expect("item");
        let Attempt::Failed(f) = failed.attempt() else {
            panic!("failed")
        };
        assert!(f.message.contains("boom"));
    }

    #[test]
    fn the_batch_cost_is_exact_and_a_negative_one_unknown() {
        let b: BatchObject =
            serde_json::from_str(r#"{"id":"b","status":"completed","usage":{"cost":0.000000075}}"#)
                .expect("object");
        assert_eq!(b.usage.and_then(|u| u.cost), Some(Decimal::new(75, 9)));
        let neg: BatchObject =
            serde_json::from_str(r#"{"id":"b","status":"expired","usage":{"cost":-1}}"#)
                .expect("object");
        assert_eq!(neg.usage.as_ref().and_then(|u| u.cost), None);
        assert!(neg.is_terminal());
    }
}
