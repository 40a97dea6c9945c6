//! The first pass over `results.jsonl`: the aggregates the summary does not hold (latency
//! histogram, throughput over time, rows per variant, pairwise agreement between raters)
//! and which rows the table shows (every failed or disagreeing row first, then a sample).
//! Memory stays flat in the number of lines: fixed bins, capped id lists, a bounded
//! reservoir, and a bounded window of rows waiting for their other raters' answers.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::Rng;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::view::View;

/// Failed rows kept for the table.
pub const MAX_FAILED: usize = 1500;
/// Disagreeing rows kept for the table.
pub const MAX_DISAGREE: usize = 1000;
/// Rows of the random sample.
pub const SAMPLE: usize = 500;
/// Rows waiting for their other raters' answers; older ones are judged with what they have.
const WINDOW: usize = 50_000;
/// Bins of the latency histogram and of the timeline.
pub const BINS: usize = 40;

/// One result line, as the report reads it (unknown fields ignored, missing ones default).
#[derive(Deserialize)]
pub struct Line {
    /// The row's id.
    pub id: String,
    /// The prompt variant.
    #[serde(default)]
    pub variant: Option<String>,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// `ok` or `error`.
    #[serde(default)]
    pub status: String,
    /// The reply, kept as JSON text.
    #[serde(default)]
    pub output: Option<Box<RawValue>>,
    /// Dollars.
    #[serde(default, with = "crate::money::opt")]
    pub cost_usd: Option<rust_decimal::Decimal>,
    /// Judge dollars.
    #[serde(default, with = "crate::money::opt")]
    pub judge_cost_usd: Option<rust_decimal::Decimal>,
    /// Latency.
    #[serde(default)]
    pub latency_ms: u64,
    /// 429 answers among the attempts.
    #[serde(default)]
    pub rate_limited_attempts: u64,
    /// `{"kind","status","message"}`.
    #[serde(default)]
    pub error: Option<Value>,
    /// The row's variables, kept as JSON text.
    #[serde(default)]
    pub vars: Option<Box<RawValue>>,
    /// When the outcome was recorded.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The validated structured reply.
    #[serde(default)]
    pub parsed: Option<Value>,
    /// Check scores.
    #[serde(default)]
    pub scores: Option<Value>,
    /// Weighted score.
    #[serde(default)]
    pub score: Option<f64>,
    /// Passed the checks.
    #[serde(default)]
    pub pass: Option<bool>,
    /// Only records the spend of a stopped pair.
    #[serde(default)]
    pub resumable: bool,
}

impl Line {
    /// "variant / model", or the model alone.
    pub fn rater(&self) -> String {
        match &self.variant {
            Some(v) => format!("{v} / {}", self.model),
            None => self.model.clone(),
        }
    }

    /// Failed: an error (not a stopped pair's spend), or an answer that did not pass.
    pub fn failed(&self) -> bool {
        (self.status == "error" && !self.resumable) || self.pass == Some(false)
    }
}

/// Counts in equal bins over `[lo, hi)`, the last bin also holding everything above.
#[derive(Debug, Clone, Default)]
pub struct Bins {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Per bin: a count and a second count (429s for the timeline).
    pub counts: Vec<(u64, u64)>,
}

impl Bins {
    /// Up to [`BINS`] bins over `[lo, hi)`, none narrower than 1 (a ms, a second).
    fn new(lo: f64, hi: f64) -> Bins {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let n = ((hi - lo).ceil() as usize).clamp(1, BINS);
        Bins {
            lo,
            hi: lo + (hi - lo).max(n as f64),
            counts: vec![(0, 0); n],
        }
    }

    fn add(&mut self, x: f64, second: u64) {
        let n = self.counts.len();
        let at = ((x - self.lo) / (self.hi - self.lo) * n as f64).floor();
        let i = if at.is_finite() {
            at.clamp(0.0, n.saturating_sub(1) as f64) as usize
        } else {
            0
        };
        if let Some(c) = self.counts.get_mut(i) {
            c.0 += 1;
            c.1 += second;
        }
    }

    /// The width of one bin.
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len().max(1) as f64
    }
}

/// Pairwise agreement of raters on one field.
#[derive(Debug, Clone, Default)]
pub struct Pairs {
    /// (agreed, compared) per (rater a, rater b), indexed like `raters`.
    pub matrix: Vec<Vec<(u64, u64)>>,
}

/// What the first pass found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Lines read.
    pub lines: u64,
    /// Lines that did not parse.
    pub bad_lines: u64,
    /// Latency histogram (ms).
    pub latency: Option<Bins>,
    /// Completions and 429s over time (seconds since the start).
    pub timeline: Option<Bins>,
    /// Lines per variant.
    pub variant_rows: BTreeMap<String, u64>,
    /// Raters in first-seen order.
    pub raters: Vec<String>,
    /// Per annotation field, pairwise agreement (indexed like `raters`).
    pub pairs: Vec<Pairs>,
    /// Failed ids (capped) and how many results failed in all.
    pub failed: Capped,
    /// Disagreeing ids (capped) and how many rows disagreed in all.
    pub disagree: Capped,
    /// A uniform sample of ids.
    pub sample: Vec<String>,
}

/// Answers of one id waiting for the other raters: (rater index, field values).
type Pending = Vec<(usize, Vec<Option<String>>)>;

struct Scanner<'v> {
    scan: Scan,
    fields: Vec<&'v str>,
    start: Option<OffsetDateTime>,
    window: HashMap<String, Pending>,
    order: VecDeque<String>,
    expected: usize,
    rng: rand::rngs::ThreadRng,
}

/// A field's value as text (strings bare, the rest as JSON), `None` when absent or null.
fn field_value(parsed: Option<&Value>, name: &str) -> Option<String> {
    match parsed?.get(name)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

impl<'v> Scanner<'v> {
    fn new(view: &'v View) -> Self {
        let mut scan = Scan::default();
        let [_, p95, max] = view.latency.map(|x| x as f64);
        // The bulk, with room past p95; the last bin also holds the slower tail.
        let hi = (p95 * 2.0).min(max).max(p95 * 1.25 + 1.0);
        if view.latency[2] > 0 {
            scan.latency = Some(Bins::new(0.0, hi.max(1.0)));
        }
        let start = view.span.0.as_deref().and_then(parse_time);
        let end = view.span.1.as_deref().and_then(parse_time);
        if let (Some(s), Some(e)) = (start, end) {
            scan.timeline = Some(Bins::new(0.0, (e - s).as_seconds_f64().max(1.0)));
        }
        let fields: Vec<&str> = view.fields.iter().map(|f| f.name.as_str()).collect();
        let mut raters: Vec<String> = Vec::new();
        for f in &view.fields {
            for r in f.raters() {
                if !raters.contains(&r) {
                    raters.push(r);
                }
            }
        }
        scan.pairs = vec![Pairs::default(); fields.len()];
        Scanner {
            expected: raters.len().max(2),
            scan,
            fields,
            start,
            window: HashMap::new(),
            order: VecDeque::new(),
            rng: rand::rng(),
        }
    }

    fn rater_index(&mut self, rater: String) -> usize {
        match self.scan.raters.iter().position(|r| *r == rater) {
            Some(i) => i,
            None => {
                self.scan.raters.push(rater);
                self.scan.raters.len() - 1
            }
        }
    }

    fn add(&mut self, line: &Line) {
        self.scan.lines += 1;
        let n = self.scan.lines;
        if let Some(b) = &mut self.scan.latency {
            b.add(line.latency_ms as f64, 0);
        }
        if let (Some(b), Some(start)) = (&mut self.scan.timeline, self.start)
            && let Some(t) = line.finished_at.as_deref().and_then(parse_time)
        {
            b.add((t - start).as_seconds_f64(), line.rate_limited_attempts);
        }
        if let Some(v) = &line.variant {
            *self.scan.variant_rows.entry(v.clone()).or_default() += 1;
        }
        let rater = self.rater_index(line.rater());
        if line.failed() {
            self.scan.failed.push(&line.id, MAX_FAILED);
        }
        if self.scan.sample.len() < SAMPLE {
            self.scan.sample.push(line.id.clone());
        } else {
            let j = self.rng.random_range(0..n);
            if let Some(slot) = usize::try_from(j)
                .ok()
                .and_then(|j| self.scan.sample.get_mut(j))
            {
                *slot = line.id.clone();
            }
        }
        if !self.fields.is_empty() && line.status == "ok" {
            self.pend(line, rater);
        }
    }

    fn pend(&mut self, line: &Line, rater: usize) {
        let values = self
            .fields
            .iter()
            .map(|f| field_value(line.parsed.as_ref(), f))
            .collect();
        let group = match self.window.get_mut(&line.id) {
            Some(g) => g,
            None => {
                self.order.push_back(line.id.clone());
                self.window.entry(line.id.clone()).or_default()
            }
        };
        group.push((rater, values));
        if group.len() >= self.expected {
            if let Some(g) = self.window.remove(&line.id) {
                self.judge(&line.id, &g);
            }
        } else if self.window.len() > WINDOW {
            self.evict_one();
        }
    }

    fn evict_one(&mut self) {
        while let Some(id) = self.order.pop_front() {
            if let Some(g) = self.window.remove(&id) {
                self.judge(&id, &g);
                return;
            }
        }
    }

    /// Compares every pair of answers of one id, field by field.
    fn judge(&mut self, id: &str, group: &Pending) {
        let n = self.scan.raters.len();
        let mut differs = false;
        for (fi, pairs) in self.scan.pairs.iter_mut().enumerate() {
            if pairs.matrix.len() < n {
                pairs.matrix.resize(n, Vec::new());
            }
            for row in &mut pairs.matrix {
                row.resize(n, (0, 0));
            }
            for (x, (ra, va)) in group.iter().enumerate() {
                for (rb, vb) in group.iter().skip(x + 1) {
                    let same = va.get(fi) == vb.get(fi);
                    differs |= !same;
                    for (i, j) in [(*ra, *rb), (*rb, *ra)] {
                        if let Some(c) = pairs.matrix.get_mut(i).and_then(|r| r.get_mut(j)) {
                            c.0 += u64::from(same);
                            c.1 += 1;
                        }
                    }
                }
            }
        }
        if differs {
            self.scan.disagree.push(id, MAX_DISAGREE);
        }
    }

    fn finish(mut self) -> Scan {
        while !self.window.is_empty() {
            self.evict_one();
        }
        self.scan
    }
}

/// Ids kept up to a cap (each once), and how many were offered in all.
#[derive(Debug, Default)]
pub struct Capped {
    /// The ids kept, in first-seen order.
    pub ids: Vec<String>,
    seen: std::collections::HashSet<String>,
    /// Every offer counted (lines for failures, rows for disagreements).
    pub total: u64,
}

impl Capped {
    fn push(&mut self, id: &str, cap: usize) {
        self.total += 1;
        if self.ids.len() < cap && !self.seen.contains(id) {
            self.seen.insert(id.to_string());
            self.ids.push(id.to_string());
        }
    }
}

/// Reads every line of `path` once.
pub fn scan(path: &std::path::Path, view: &View) -> std::io::Result<Scan> {
    let mut s = Scanner::new(view);
    let mut bad = 0;
    for_each_line(path, |line| match line {
        Some(l) => s.add(&l),
        None => bad += 1,
    })?;
    let mut out = s.finish();
    out.bad_lines = bad;
    Ok(out)
}

/// Calls `f` with every line of `path` parsed (`None` for a line that does not parse).
pub fn for_each_line(
    path: &std::path::Path,
    mut f: impl FnMut(Option<Line>),
) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        f(serde_json::from_slice::<Line>(&buf).ok());
    }
}
