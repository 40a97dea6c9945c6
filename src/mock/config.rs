//! The mock's settings: one struct that is both the library's configuration and the
//! `orbatch mock-server` flags (`#[command(flatten)]` it into a clap command).

use std::net::SocketAddr;

use rust_decimal::Decimal;

/// How the mock server behaves: where it listens, its faults and its limits.
///
/// Fault rates are fractions of the chat requests that reach the fault dice (those that passed
/// the key, body, model, RPM and credit checks). The rates add up in this order: hang, reset,
/// error (5xx), error200, finish-error, empty, malformed, moderation; a request gets at most one fault, and
/// when the rates sum past 1 the later faults get only what is left.
#[derive(clap::Args, Clone, Debug)]
pub struct MockConfig {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Latency added to every chat request that is processed, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency, uniform in 0..=N milliseconds (from the seeded dice).
    #[arg(long, default_value_t = 0)]
    pub latency_jitter_ms: u64,
    /// More than N accepted chat requests in any rolling window => 429 with Retry-After.
    #[arg(long, value_name = "N")]
    pub rpm_limit: Option<u32>,
    /// The rolling window of --rpm-limit, in milliseconds.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    pub rpm_window_ms: u64,
    /// Fraction of chat requests answered 500/502/503 (in rotation) with an error body.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub error_rate: f64,
    /// Fraction answered HTTP 200 with a top-level `error` object and no choices.
    #[arg(long = "error200-rate", default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub error200_rate: f64,
    /// Fraction answered 200 with `finish_reason: "error"` and `choices[0].error` (billed).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub finish_error_rate: f64,
    /// Fraction answered 200 with empty content and a null finish reason (billed: prompt).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub empty_rate: f64,
    /// Fraction never answered: the handler sleeps --hang-secs, then drops the connection.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub hang_rate: f64,
    /// How long a hung request sleeps before its connection is dropped.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub hang_secs: u64,
    /// Fraction whose connection is dropped mid-body after processing (billed).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub reset_rate: f64,
    /// Fraction answered 200 with a truncated, invalid JSON body (billed).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub malformed_rate: f64,
    /// Fraction answered 403 "flagged by moderation" (not billed), with the metadata of
    /// OpenRouter's moderation errors (`reasons`, `flagged_input`, `provider_name`, `model_slug`).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub moderation_rate: f64,
    /// Once the total charged reaches USD, chat answers 402; /key shows the limit.
    #[arg(long, value_name = "USD")]
    pub credit_limit: Option<Decimal>,
    /// /generation answers 404 for this long after a completion is sent.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub generation_lag_ms: u64,
    /// Omit usage.cost and usage.cost_details, like some OpenAI-compatible servers.
    #[arg(long)]
    pub no_cost: bool,
    /// /generation always answers 404, like a server without the endpoint.
    #[arg(long)]
    pub no_generation: bool,
    /// The smallest Retry-After (seconds) sent with a rate-limit 429.
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    pub retry_after_secs: u64,
    /// A model answered by chat but absent from /models (repeatable).
    #[arg(long = "unlisted-model", value_name = "SLUG")]
    pub unlisted_models: Vec<String>,
    /// An accepted API key (repeatable); with none, any key starting "sk-or-v1-mock" works.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// `/models` lists every price divided by N (the charges stay): a lying price list.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub listed_price_divisor: u32,
    /// The divisor applies to the first N `/models` answers only, then the true prices are
    /// listed (a price rise the list catches up with); 0 = every answer.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub listed_price_divisor_calls: u32,
    /// Seeds the fault dice: same seed + same request sequence => same faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Do not keep request headers and user text in the request log (for benchmarks).
    #[arg(long)]
    pub no_log: bool,
    /// Fraction of structured (json_schema) replies with a value outside an enum.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub schema_enum_rate: f64,
    /// Fraction of structured replies that are prose instead of JSON.
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub schema_prose_rate: f64,
    /// Fraction of structured replies cut short (`finish_reason: length`).
    #[arg(long, default_value_t = 0.0, value_parser = rate, value_name = "P")]
    pub schema_truncated_rate: f64,
    /// Schema faults only in conversations with fewer than N assistant turns (0: always).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub schema_fault_turns: u32,
    /// The Batch API's timing, faults and limits.
    #[command(flatten)]
    pub batch: super::batch::BatchMockConfig,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency_ms: 0,
            latency_jitter_ms: 0,
            rpm_limit: None,
            rpm_window_ms: 60_000,
            error_rate: 0.0,
            error200_rate: 0.0,
            finish_error_rate: 0.0,
            empty_rate: 0.0,
            hang_rate: 0.0,
            hang_secs: 600,
            reset_rate: 0.0,
            malformed_rate: 0.0,
            moderation_rate: 0.0,
            credit_limit: None,
            generation_lag_ms: 0,
            no_cost: false,
            no_generation: false,
            retry_after_secs: 1,
            unlisted_models: Vec::new(),
            keys: Vec::new(),
            listed_price_divisor: 1,
            listed_price_divisor_calls: 0,
            seed: 0,
            no_log: false,
            schema_enum_rate: 0.0,
            schema_prose_rate: 0.0,
            schema_truncated_rate: 0.0,
            schema_fault_turns: 0,
            batch: Default::default(),
        }
    }
}

/// Parses a probability in `0..=1`.
fn rate(s: &str) -> Result<f64, String> {
    let p: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a fraction between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct A {
        #[command(flatten)]
        cfg: MockConfig,
    }

    #[test]
    fn default_matches_the_flags() {
        let parsed = A::parse_from(["mock"]).cfg;
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", MockConfig::default())
        );
    }

    #[test]
    fn parses_faults_and_rejects_bad_rates() {
        let a = A::parse_from([
            "mock",
            "--error-rate",
            "0.5",
            "--error200-rate",
            "1",
            "--credit-limit",
            "0.01",
            "--unlisted-model",
            "x/y",
            "--key",
            "k1",
            "--key",
            "k2",
        ]);
        assert_eq!(a.cfg.error_rate, 0.5);
        assert_eq!(a.cfg.error200_rate, 1.0);
        assert_eq!(a.cfg.credit_limit, Some(Decimal::new(1, 2)));
        assert_eq!(a.cfg.unlisted_models, vec!["x/y"]);
        assert_eq!(a.cfg.keys, vec!["k1", "k2"]);
        assert!(A::try_parse_from(["mock", "--hang-rate", "1.5"]).is_err());
    }
}
