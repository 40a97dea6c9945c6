//! The field paths of `summary.json` that docs/contract.md §4 fixes (JSON pointers), shared by the
//! test binaries that check them.

/// Every contract field of `summary.json`.
pub const SUMMARY_FIELDS: [&str; 27] = [
    "/job",
    "/complete",
    "/rows/total",
    "/rows/ok",
    "/rows/error",
    "/rows/not_sent",
    "/requests/sent",
    "/requests/retried",
    "/requests/rate_limited",
    "/requests/unknown_cost_attempts",
    "/tokens/prompt",
    "/tokens/completion",
    "/tokens/reasoning",
    "/tokens/cached",
    "/cost_usd/total",
    "/cost_usd/table_total",
    "/cost_usd/mismatched_rows",
    "/cost_usd/by_model",
    "/cost_usd/by_provider",
    "/errors_by_kind",
    "/latency_ms/p50",
    "/latency_ms/p95",
    "/latency_ms/max",
    "/wall_secs",
    "/started_at",
    "/cache/hits",
    "/cache/saved_usd",
];
