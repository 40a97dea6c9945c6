//! The response cache in the pipeline. The dispatcher looks each pair up before it reserves
//! budget or waits for the limiter: a hit becomes its result line at once (nothing sent,
//! nothing reserved). A paid answer carries a [`CacheTicket`] on its line, and the writer
//! turns the tickets of the lines it has written into cache entries ([`entries`]), so an
//! answer is in the cache only once its line is in results.jsonl.

use rust_decimal::Decimal;

use super::Ctx;
use crate::output::line::LineBuilder;
use crate::output::results::Prior;
use crate::output::{CacheTicket, CostSource, RawJson, ResultLine, Status};
use crate::transport::cache::{CachedAnswer, Key};

/// The pair's line when the cache holds its answer (`None`: a miss, or no cache). The line
/// keeps the key's earlier counters (cost and attempts of earlier runs in this output dir) and
/// adds nothing to them: `cost_usd` grows by 0, `cached_cost_usd` says what the hit saved.
pub(crate) fn hit(
    ctx: &Ctx,
    key: Option<Key>,
    pair: crate::output::key::ResultKey<'_>,
    vars: RawJson,
    prior: Option<&Prior>,
) -> Option<ResultLine> {
    let answer = ctx.cache.as_ref()?.get(key?)?;
    answer.content.as_ref()?;
    let mut line = LineBuilder::for_key(pair)
        .vars(vars)
        .counts(
            Some(prior.and_then(|p| p.cost_usd).unwrap_or_default()),
            prior.map_or(0, |p| p.attempts),
            (
                prior.map_or(0, |p| p.unknown_cost_attempts),
                prior
                    .and_then(|p| p.unknown_cost_max_usd)
                    .unwrap_or_default(),
            ),
            prior.map_or(0, |p| p.rate_limited_attempts),
        )
        .build();
    super::tally::fill_completion(&mut line, &answer);
    if let Some(spec) = &ctx.job.output {
        // Only validated answers are cached; one that does not validate (now) is a miss.
        let parsed = spec
            .compiled
            .check(answer.content.as_deref(), answer.finish_reason.as_deref())
            .ok()?;
        line.parsed = Some(Some(RawJson::of(&parsed)));
        line.schema_attempts = Some(1);
    }
    line.cost_source = Some(CostSource::Cache);
    line.cache_hit = true;
    line.cached_cost_usd = Some(answer.cost.unwrap_or_default());
    Some(line)
}

/// Gives an answered line its ticket: its key and what the answer cost (the line's cost now
/// less what the key had cost before).
pub(crate) fn ticket(line: &mut ResultLine, key: Option<Key>, cost_before: Option<Decimal>) {
    let Some(key) = key else { return };
    let cost = match (line.cost_source, line.cost_usd) {
        (Some(_), Some(now)) => Some(now - cost_before.unwrap_or_default()),
        _ => None,
    };
    line.cache_ticket = Some(CacheTicket { key, cost });
}

/// The cache entries of written `lines`: only answers the run accepted (status ok, an output,
/// no `finish_reason: error`), never hits, never errors.
pub(crate) fn entries(lines: &[ResultLine]) -> Vec<(Key, CachedAnswer)> {
    lines
        .iter()
        .filter(|l| {
            l.status == Status::Ok
                && !l.cache_hit
                && l.output.is_some()
                && l.finish_reason.as_deref() != Some("error")
        })
        .filter_map(|l| {
            let t = l.cache_ticket?;
            Some((
                t.key,
                CachedAnswer {
                    content: l.output.clone(),
                    response_model: l.response_model.clone(),
                    finish_reason: l.finish_reason.clone(),
                    provider: l.provider.clone(),
                    generation_id: l.generation_id.clone(),
                    prompt_tokens: l.prompt_tokens,
                    completion_tokens: l.completion_tokens,
                    reasoning_tokens: l.reasoning_tokens,
                    cached_tokens: l.cached_tokens,
                    cost: t.cost,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ErrorKind;

    fn paid(id: &str) -> ResultLine {
        let mut l = LineBuilder::new(id, "m").ok("yes").build();
        l.cost_usd = Some(Decimal::new(3, 3));
        l.cost_source = Some(CostSource::Response);
        ticket(&mut l, Some([1; 32]), Some(Decimal::new(1, 3)));
        l
    }

    #[test]
    fn only_accepted_paid_answers_become_entries() {
        let ok = paid("1");
        let mut failed = paid("2");
        LineBuilder::mark_error(&mut failed, ErrorKind::Provider, None, "x".into());
        let mut cut = paid("3");
        cut.finish_reason = Some("error".into());
        let mut hit = paid("4");
        hit.cache_hit = true;
        let mut no_ticket = paid("5");
        no_ticket.cache_ticket = None;
        let got = entries(&[ok, failed, cut, hit, no_ticket]);
        assert_eq!(got.len(), 1);
        // The answer's own charge: the key's earlier cost is not part of it.
        assert_eq!(got[0].1.cost, Some(Decimal::new(2, 3)));
        assert_eq!(got[0].1.content.as_deref(), Some("yes"));
    }
}
