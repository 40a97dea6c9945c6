//! The plan: the work of a job, defined once. Its keys are (row x variant x model) (the
//! variant is `None` when the job defines no `[[variants]]`); the pending ones are those not
//! finished yet: a key whose latest line is `ok` is finished, and so is one whose latest line
//! is an error, unless `--retry-failed` or the line is `resumable` (stopped early: a plain
//! re-run sends it again). Each pending key carries its [`Prior`] and, once its messages are
//! rendered, its worst case ([`worst_case`]: what the budget reserves for each attempt).
//!
//! The dispatcher, `run`'s pre-flight, `estimate`, `validate` and the end files all ask the
//! plan, so the pre-flight counts exactly what the dispatcher sends. Memory stays flat in rows:
//! the plan is a filter over the streamed rows and the recovered key-hash sets, never a list
//! of keys.

use std::collections::HashSet;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::job::Job;
use crate::output::key::ResultKey;
use crate::output::results::{Prior, Recovered};
use crate::prices::PriceTable;
use crate::scan::ScanReport;
use crate::shard::Shard;

/// A job's keys, less the finished ones.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The job's models, or (batch lines naming their own) every model the lines name.
    models: Vec<String>,
    /// Each batch line names its own model: one key a row (and variant).
    per_row_model: bool,
    /// The job's prompt variants (`[None]` when it defines none).
    variants: Vec<Option<String>>,
    /// What earlier runs recorded (`None`: nothing, as in `validate` or `--fresh`).
    recovered: Option<&'a Recovered>,
    /// `--retry-failed`: failed keys are pending too.
    retry_failed: bool,
    /// Only these rows (0-based indexes: the estimate's pilot).
    only_rows: Option<Arc<HashSet<u64>>>,
    /// Only the rows whose id hashes to this shard (`--shard`).
    shard: Option<Shard>,
}

/// A key the plan still has to send.
#[derive(Debug, Clone)]
pub struct PendingKey<'r> {
    /// The key.
    pub key: ResultKey<'r>,
    /// What the key already cost (a failed or stopped key sent again).
    pub prior: Option<Prior>,
}

impl PendingKey<'_> {
    /// The worst case of the key's next attempt, once its `messages` are rendered: what the
    /// budget reserves before sending it ([`worst_case`]).
    pub fn worst(
        &self,
        prices: &PriceTable,
        messages: &[serde_json::Value],
        cap: Option<u64>,
        budget_set: bool,
    ) -> Decimal {
        worst_case(prices, self.key.model, messages, cap, budget_set)
    }

    /// The worst case its earlier attempts of unknown charge carry (counted by
    /// [`Plan::carried_worst`] for the whole dir).
    pub fn carried_worst(&self) -> Decimal {
        self.prior
            .as_ref()
            .and_then(|p| p.unknown_cost_max_usd)
            .unwrap_or_default()
    }
}

impl<'a> Plan<'a> {
    /// Every key of `job` (whose input `scan` validated) is pending.
    pub fn new(job: &Job, scan: &ScanReport) -> Plan<'a> {
        let plan = if job.request.models.is_empty() {
            Plan::with_models(scan.batch_models.clone(), true)
        } else {
            Plan::with_models(job.request.models.clone(), false)
        }
        .sharded(job.shard);
        plan.with_variants_of(job)
    }

    /// Every key of `job` is pending, before its input was scanned: when batch lines name
    /// their own models, [`Plan::models`] is empty (only a scan lists them), the rest holds.
    pub fn for_job(job: &Job) -> Plan<'a> {
        let models = job.request.models.clone();
        let per_row_model = models.is_empty();
        Plan::with_models(models, per_row_model)
            .sharded(job.shard)
            .with_variants_of(job)
    }

    /// Every key is pending: every row x `models`, or (`per_row_model`: batch lines name
    /// their own model, `models` lists those named) one key a row.
    pub fn with_models(models: Vec<String>, per_row_model: bool) -> Plan<'a> {
        Plan {
            models,
            per_row_model,
            variants: vec![None],
            recovered: None,
            retry_failed: false,
            only_rows: None,
            shard: None,
        }
    }

    /// The plan over `job`'s prompt variants (each row x variant x model is a key).
    pub fn with_variants_of(self, job: &Job) -> Plan<'a> {
        let variants = match job.variants.is_empty() {
            true => vec![None],
            false => job.variants.iter().map(|v| Some(v.name.clone())).collect(),
        };
        Plan { variants, ..self }
    }

    /// The job's variants (`[None]` when it defines none).
    pub fn variants(&self) -> &[Option<String>] {
        &self.variants
    }

    /// The plan less what `recovered` finished; `retry_failed` makes failed keys pending again.
    pub fn resuming(self, recovered: &'a Recovered, retry_failed: bool) -> Plan<'a> {
        Plan {
            recovered: Some(recovered),
            retry_failed,
            ..self
        }
    }

    /// The plan limited to the rows with these 0-based indexes (`None`: every row).
    pub fn only_rows(self, only: Option<Arc<HashSet<u64>>>) -> Plan<'a> {
        Plan {
            only_rows: only,
            ..self
        }
    }

    /// The plan limited to the rows of `shard` (`None`: every row).
    pub fn sharded(self, shard: Option<Shard>) -> Plan<'a> {
        Plan { shard, ..self }
    }

    /// The shard the plan is limited to, if any.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The job's models (the job's own, or those its batch lines name).
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// The keys of `rows` rows (of the plan's shard: `ScanReport::shard_rows`): every row x
    /// every variant x every model, or one a row and variant when batch lines name their own
    /// model.
    pub fn total(&self, rows: u64) -> u64 {
        let per_row = if self.per_row_model {
            1
        } else {
            self.models.len() as u64
        };
        rows * per_row * self.variants.len() as u64
    }

    /// Whether the row with this 0-based index and this id is part of the plan: one of
    /// `only_rows`, if set, and of the plan's shard, if any.
    pub fn includes_row(&self, index: u64, id: &str) -> bool {
        self.only_rows
            .as_ref()
            .is_none_or(|only| only.contains(&index))
            && self.shard.is_none_or(|s| s.owns(id))
    }

    /// The key (`id`, `variant`, `model`) when it is still to send (`None`: finished).
    pub fn pending<'r>(
        &self,
        id: &'r str,
        variant: Option<&'r str>,
        model: &'r str,
    ) -> Option<PendingKey<'r>> {
        let key = ResultKey::of(id, variant, model);
        let Some(r) = self.recovered else {
            return Some(PendingKey { key, prior: None });
        };
        let hash = key.hash();
        if r.done.contains(&hash) {
            return None;
        }
        let prior = r.failed.get(&hash);
        if prior.as_ref().is_some_and(|p| !p.resumable) && !self.retry_failed {
            return None;
        }
        Some(PendingKey { key, prior })
    }

    /// How many keys are pending among the `rows` rows of the input, counted from the
    /// recovered sets without reading the rows (for the progress bar: finished keys of rows
    /// outside the plan make it an upper bound's complement, never more than the total).
    pub fn pending_count(&self, rows: u64) -> u64 {
        let rows = match &self.only_rows {
            Some(only) => only.len() as u64,
            None => rows,
        };
        let finished = self.recovered.map_or(0, |r| {
            let failed_kept = if self.retry_failed {
                0
            } else {
                r.failed.not_resumable() as u64
            };
            r.done.len() as u64 + failed_kept
        });
        self.total(rows).saturating_sub(finished)
    }

    /// What the output dir already recorded as spent.
    pub fn spent(&self) -> Decimal {
        self.recovered.map_or(Decimal::ZERO, |r| r.spent)
    }

    /// The worst case carried from earlier runs: the most their attempts of unknown charge
    /// (stopped or crashed mid-request) may have cost on top of [`Plan::spent`].
    pub fn carried_worst(&self) -> Decimal {
        self.recovered.map_or(Decimal::ZERO, |r| r.unknown_max)
    }

    /// What the budget starts from: the recorded spend plus the carried worst case.
    pub fn committed(&self) -> Decimal {
        self.spent() + self.carried_worst()
    }
}

/// An attempt's worst case for `model` with these rendered `messages` and completion `cap`:
/// what the budget reserves before sending it. Without a price it is refused (`Decimal::MAX`)
/// when a budget is set (unreachable: an unpriced model is refused before the run), and zero
/// otherwise (an ambiguous attempt records it, which a later run with a budget counts).
pub fn worst_case(
    prices: &PriceTable,
    model: &str,
    messages: &[serde_json::Value],
    cap: Option<u64>,
    budget_set: bool,
) -> Decimal {
    crate::prices::worst_case(prices, model, messages, cap).unwrap_or(if budget_set {
        Decimal::MAX
    } else {
        Decimal::ZERO
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::key::key_hash;

    fn models(models: &[&str]) -> Vec<String> {
        models.iter().map(|m| m.to_string()).collect()
    }

    fn prior(resumable: bool) -> Prior {
        Prior {
            resumable,
            ..Prior::default()
        }
    }

    #[test]
    fn finished_keys_are_done_and_failed_unless_resumable_or_retried() {
        let mut r = Recovered::default();
        r.done.insert(key_hash("1", "a"));
        r.failed.insert(key_hash("2", "a"), prior(false));
        r.failed.insert(key_hash("3", "a"), prior(true));
        r.unknown_max = Decimal::ONE;
        r.spent = Decimal::TWO;
        let plan = Plan::with_models(models(&["a", "b"]), false).resuming(&r, false);
        assert!(plan.pending("1", None, "a").is_none());
        assert!(plan.pending("1", None, "b").is_some());
        assert!(plan.pending("2", None, "a").is_none());
        let stopped = plan
            .pending("3", None, "a")
            .expect("a resumable key is pending");
        assert_eq!(stopped.prior, Some(prior(true)));
        assert_eq!(stopped.key.variant, None);
        assert_eq!(stopped.carried_worst(), Decimal::ZERO);
        assert_eq!(plan.total(4), 8);
        assert_eq!(plan.pending_count(4), 6);
        assert_eq!(plan.committed(), Decimal::from(3));
        let retry = plan.clone().resuming(&r, true);
        assert!(retry.pending("2", None, "a").is_some());
        assert_eq!(retry.pending_count(4), 7);
    }

    #[test]
    fn batch_lines_name_one_model_a_row_and_only_rows_filters() {
        let plan = Plan::with_models(models(&["a", "b"]), true)
            .only_rows(Some(Arc::new(HashSet::from([0u64, 2]))));
        assert_eq!(plan.models(), ["a", "b"]);
        assert_eq!(plan.total(5), 5);
        assert_eq!(plan.pending_count(5), 2);
        assert!(plan.includes_row(2, "x") && !plan.includes_row(1, "x"));
    }

    #[test]
    fn a_sharded_plan_includes_only_its_rows() {
        let shard = Shard::new(1, 3).unwrap();
        let plan = Plan::with_models(models(&["a"]), false).sharded(Some(shard));
        let ids: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        let mine: Vec<&String> = ids.iter().filter(|id| plan.includes_row(0, id)).collect();
        assert!(mine.iter().all(|id| shard.owns(id)));
        assert!(mine.len() > 50 && mine.len() < 150, "{}", mine.len());
        assert_eq!(plan.shard(), Some(shard));
    }

    #[test]
    fn variants_multiply_the_keys_and_each_is_its_own() {
        let mut r = Recovered::default();
        r.done.insert(ResultKey::of("1", Some("v1"), "a").hash());
        let mut plan = Plan::with_models(models(&["a", "b"]), false);
        plan.variants = vec![Some("v1".into()), Some("v2".into())];
        assert_eq!(plan.total(3), 12);
        let plan = plan.resuming(&r, false);
        assert!(plan.pending("1", Some("v1"), "a").is_none());
        assert!(plan.pending("1", Some("v2"), "a").is_some());
        assert!(plan.pending("1", None, "a").is_some());
        assert_eq!(plan.pending_count(3), 11);
    }
}
