//! Streaming passes over the input: render every row's messages, as `run` will send them, and
//! count each request's tokens per model. Memory stays flat: one row at a time.

use std::collections::HashMap;

use super::model::Counts;
use crate::input::{InputError, Row, RowReader};
use crate::job::Job;
use crate::prices::{PriceTable, prompt_tokens_upper_bound};
use crate::prompts::{Arm, Prompts};
use crate::tokens::Encoding;

/// Calls `f` with every row of the job's input (first `limit` rows), in order, until it
/// returns false. Rows that do not parse or render are skipped: the scan reported them.
pub fn for_each_row(job: &Job, mut f: impl FnMut(Row) -> bool) -> Result<(), InputError> {
    let reader = RowReader::open_with(
        &job.input,
        job.id_column.as_deref(),
        job.delimiter,
        u64::MAX,
    )?;
    let limit = job.limit_rows.unwrap_or(u64::MAX);
    for (i, row) in reader.enumerate() {
        if i as u64 >= limit {
            break;
        }
        if let Ok(row) = row
            && !f(row)
        {
            break;
        }
    }
    Ok(())
}

/// Counts the requests of rows (each prompt variant x each model), per model.
pub struct Counter<'a> {
    /// Each variant's request and body builder.
    arms: Vec<Arm<'a>>,
    prices: &'a PriceTable,
    /// Count with tiktoken (false: only the byte bound and the caps, no tokenizer built).
    tokenize: bool,
    encodings: HashMap<String, (Encoding, bool)>,
}

impl<'a> Counter<'a> {
    /// A counter for `job`'s requests; `tokenize` builds the tiktoken tables on first use.
    pub fn new(
        job: &'a Job,
        prompts: &'a Prompts,
        prices: &'a PriceTable,
        tokenize: bool,
    ) -> Counter<'a> {
        Counter {
            arms: prompts.arms(&job.request),
            prices,
            tokenize,
            encodings: HashMap::new(),
        }
    }

    /// The encoding used for `model` and whether its count is exact.
    pub fn encoding(&mut self, model: &str) -> (Encoding, bool) {
        if let Some(e) = self.encodings.get(model) {
            return *e;
        }
        let tokenizer = self.prices.get(model).and_then(|p| p.tokenizer.as_deref());
        let e = Encoding::for_model(model, tokenizer);
        self.encodings.insert(model.to_string(), e);
        e
    }

    /// Calls `f(variant, model, counts of that one request)` for each request of `row` (each
    /// variant x each model). Returns false when the row does not render (the scan has
    /// reported it).
    pub fn row(&mut self, row: &Row, mut f: impl FnMut(Option<&str>, &str, &Counts)) -> bool {
        let arms = std::mem::take(&mut self.arms);
        let mut rendered = true;
        for arm in &arms {
            rendered &= self.arm_row(arm, row, &mut f);
        }
        self.arms = arms;
        rendered
    }

    fn arm_row(
        &mut self,
        arm: &Arm<'_>,
        row: &Row,
        f: &mut impl FnMut(Option<&str>, &str, &Counts),
    ) -> bool {
        let Ok(messages) = arm.prompt.messages(row) else {
            return false;
        };
        let upper = prompt_tokens_upper_bound(&messages);
        let cap = crate::request::completion_cap(row, &arm.spec);
        let mut counted: Vec<(Encoding, u64)> = Vec::with_capacity(2);
        for model in arm.builder.models_for(row) {
            let local = if self.tokenize {
                let (enc, _) = self.encoding(model);
                match counted.iter().find(|(e, _)| *e == enc) {
                    Some((_, n)) => *n,
                    None => {
                        let n = enc.count_messages(&messages);
                        counted.push((enc, n));
                        n
                    }
                }
            } else {
                0
            };
            let c = Counts {
                requests: 1,
                prompt_tokens: local,
                prompt_upper: upper,
                capped_requests: u64::from(cap.is_some()),
                cap_sum: cap.unwrap_or(0),
                capped_guess: cap.map_or(0, |c| c.div_ceil(2)),
                tpm_tokens: local + arm.spec.max_tokens.unwrap_or(0),
            };
            f(arm.variant, model, &c);
        }
        true
    }
}

/// Per-model totals in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// (model, counts), in the order models were first met.
    pub models: Vec<(String, Counts)>,
    index: HashMap<String, usize>,
}

impl Tally {
    /// A tally with `models` first, in this order (each with zero counts).
    pub fn with_models(models: &[String]) -> Tally {
        let mut t = Tally::default();
        for m in models {
            t.slot(m);
        }
        t
    }

    /// Adds one request's counts to `model`.
    pub fn add(&mut self, model: &str, c: &Counts) {
        let i = self.slot(model);
        self.models[i].1.add(c);
    }

    fn slot(&mut self, model: &str) -> usize {
        if let Some(&i) = self.index.get(model) {
            return i;
        }
        self.models.push((model.to_string(), Counts::default()));
        self.index.insert(model.to_string(), self.models.len() - 1);
        self.models.len() - 1
    }
}

/// The first pass of `estimate`: per-model totals, and (for a pilot) each row's local prompt
/// count, by which pilot rows are spread (4 bytes a row).
pub struct FirstPass {
    /// Per-model totals over every row.
    pub tally: Tally,
    /// Rows counted.
    pub rows: u64,
    /// Each row's prompt tokens (its first model's count), when asked for.
    pub row_tokens: Vec<u32>,
    /// The prompts longer than their model's context length.
    pub too_long: super::context::TooLong,
}

/// Counts every row of the job.
pub fn first_pass(
    job: &Job,
    prompts: &Prompts,
    prices: &PriceTable,
    models: &[String],
    keep_row_tokens: bool,
) -> Result<FirstPass, InputError> {
    let mut counter = Counter::new(job, prompts, prices, true);
    let mut out = FirstPass {
        tally: Tally::with_models(models),
        rows: 0,
        row_tokens: Vec::new(),
        too_long: Default::default(),
    };
    // `estimate --shard K/N` counts the shard's share: the plan's rows.
    let plan = crate::plan::Plan::for_job(job);
    for_each_row(job, |row| {
        if !plan.includes_row(row.index, &row.id) {
            return true;
        }
        let mut first: Option<u64> = None;
        counter.row(&row, |_, model, c| {
            out.tally.add(model, c);
            let at = (job.input.as_path(), row.line);
            out.too_long.check(at, model, c.prompt_tokens, prices);
            first.get_or_insert(c.prompt_tokens);
        });
        out.rows += 1;
        if keep_row_tokens {
            let n = first.unwrap_or(0);
            out.row_tokens.push(u32::try_from(n).unwrap_or(u32::MAX));
        }
        true
    })?;
    Ok(out)
}
