//! `judge` checks: an LLM grades an output against a rubric and answers `{score, reason}`
//! through a JSON schema.

use serde::{Deserialize, Serialize};

/// A judge check's grade on a line, and the hash of what it judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord {
    /// blake3 of (judge model, rendered rubric): a re-score sends the judge again only when
    /// this changed.
    pub hash: String,
    /// The grade (0..1), `null` when the judge failed or never gave a valid reply.
    pub score: Option<f64>,
    /// The judge's reason, or why it gave no grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
