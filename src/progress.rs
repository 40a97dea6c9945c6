//! Progress: counters fed by the writer, shown as an indicatif bar on a TTY, or as a log line
//! on stderr every few seconds when the bar is hidden (off-TTY or `--no-progress`).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rust_decimal::Decimal;

use crate::output::{ResultLine, Status};

/// Counters of the running job.
pub struct Progress {
    /// Pairs this run will send (excluding those finished earlier).
    pub total: u64,
    done: AtomicU64,
    errors: AtomicU64,
    /// Pairs answered from the response cache.
    hits: AtomicU64,
    /// Micro-dollars spent this run (display only; money is exact elsewhere).
    spent_nano: AtomicU64,
    started: Instant,
}

impl Progress {
    /// Counters for `total` pairs.
    pub fn new(total: u64) -> Arc<Progress> {
        Arc::new(Progress {
            total,
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            spent_nano: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// Counts one written line.
    pub fn record(&self, line: &ResultLine) {
        self.done.fetch_add(1, Relaxed);
        if line.status == Status::Error {
            self.errors.fetch_add(1, Relaxed);
        }
        if line.cache_hit {
            self.hits.fetch_add(1, Relaxed);
        }
        if let Some(c) = line.cost_usd {
            let nano = (c * Decimal::from(1_000_000_000u64)).trunc();
            self.spent_nano
                .fetch_add(u64::try_from(nano).unwrap_or(0), Relaxed);
        }
    }

    /// Pairs finished this run.
    pub fn done(&self) -> u64 {
        self.done.load(Relaxed)
    }

    fn line(&self) -> String {
        let done = self.done();
        let mins = self.started.elapsed().as_secs_f64() / 60.0;
        let rpm = if mins > 0.0 { done as f64 / mins } else { 0.0 };
        let spent = self.spent_nano.load(Relaxed) as f64 / 1e9;
        format!(
            "{done}/{} done · {rpm:.0} req/min · ${spent:.6} · {} errors · {} cache hits",
            self.total,
            self.errors.load(Relaxed),
            self.hits.load(Relaxed)
        )
    }

    /// Runs the display until `done` resolves: a bar on a TTY (unless `show_bar` is false),
    /// else a log line every 5 s.
    pub async fn display(
        self: Arc<Self>,
        show_bar: bool,
        done: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(done);
        if show_bar && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(self.total),
                ProgressDrawTarget::stderr_with_hz(5),
            );
            let template = if crate::console::color_allowed() {
                "{bar:30.cyan/blue} {pos}/{len} {msg} · ETA {eta}"
            } else {
                "{bar:30} {pos}/{len} {msg} · ETA {eta}"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            *shown_bar() = Some(bar.clone());
            loop {
                bar.set_position(self.done());
                bar.set_message(self.line_short());
                tokio::select! {
                    _ = &mut done => break,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
            *shown_bar() = None;
            bar.finish_and_clear();
        } else {
            loop {
                tokio::select! {
                    _ = &mut done => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        eprintln!("orbatch: {}", self.line());
                    }
                }
            }
        }
    }

    fn line_short(&self) -> String {
        let mins = self.started.elapsed().as_secs_f64() / 60.0;
        let rpm = if mins > 0.0 {
            self.done() as f64 / mins
        } else {
            0.0
        };
        format!(
            "{rpm:.0} req/min · ${:.6} · {} errors · {} cached",
            self.spent_nano.load(Relaxed) as f64 / 1e9,
            self.errors.load(Relaxed),
            self.hits.load(Relaxed)
        )
    }
}

/// The bar on the terminal now, if any: a line written past it would be drawn over (and
/// appear twice once the bar redraws), so [`say`] prints above it.
fn shown_bar() -> std::sync::MutexGuard<'static, Option<ProgressBar>> {
    static BAR: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    BAR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `line` to stderr once, above the progress bar when one is shown.
pub fn say(line: &str) {
    use std::io::Write;
    let bar = shown_bar().clone();
    match bar {
        Some(bar) if !bar.is_finished() => bar.println(line),
        _ => {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}
