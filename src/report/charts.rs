//! The report's charts, drawn by `plotters` into SVG strings that the page inlines (its SVG
//! backend escapes every text it writes). No fonts are loaded: text is laid out by an
//! estimate and drawn by the browser in its own sans-serif.

use plotters::prelude::*;

use super::scan::Bins;
use super::view::Cell;

/// A chart, or why it could not be drawn.
pub type Chart = Result<String, String>;

const WIDTH: u32 = 860;
const FONT: &str = "sans-serif";
const BLUE: RGBColor = RGBColor(47, 111, 183);
const ORANGE: RGBColor = RGBColor(214, 110, 30);
const GREY: RGBColor = RGBColor(150, 150, 150);

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The legend of a chart's labelled series, at `at`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(at)
        .label_font((FONT, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .draw()
        .map_err(err)
}

/// Pixels for labels of up to `longest` characters at 12px.
fn label_room(labels: impl Iterator<Item = usize>) -> u32 {
    let longest = labels.max().unwrap_or(4).min(48) as u32;
    (longest * 7 + 16).clamp(60, 360)
}

fn name(labels: &[String], v: &SegmentValue<usize>) -> String {
    match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            labels.get(*i).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    }
}

/// A chart of horizontal bands, one per label, over `0..x_max`.
type Bands<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize>,
    >,
>;

/// Draws a [`Bands`] chart: caption, a band per label, the x axis formatted by `unit`, then
/// what `draw` adds, and a legend of its labelled series when `draw` returns true.
fn bands(
    caption: &str,
    labels: &[String],
    x_max: f64,
    unit: &dyn Fn(f64) -> String,
    draw: impl FnOnce(&mut Bands<'_, '_>) -> Result<bool, String>,
) -> Chart {
    let height = 90 + 30 * labels.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(label_room(labels.iter().map(|l| l.chars().count())))
            .build_cartesian_2d(0.0..x_max, (0..labels.len()).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| unit(*x))
            .y_label_formatter(&|v| name(labels, v))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        if draw(&mut chart)? {
            legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The band of label `i` from `x0` to `x1`.
fn band(i: usize, x0: f64, x1: f64, color: RGBAColor) -> Rectangle<(f64, SegmentValue<usize>)> {
    let mut r = Rectangle::new(
        [
            (x0, SegmentValue::Exact(i)),
            (x1, SegmentValue::Exact(i + 1)),
        ],
        color.filled(),
    );
    r.set_margin(4, 4, 0, 0);
    r
}

/// Horizontal bars, one per (label, value); `unit` formats the axis.
pub fn bars(caption: &str, items: &[(String, f64)], unit: &dyn Fn(f64) -> String) -> Chart {
    let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
    let max = items.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let max = if max > 0.0 { max * 1.08 } else { 1.0 };
    bands(caption, &labels, max, unit, |chart| {
        let bars = items.iter().enumerate();
        chart
            .draw_series(bars.map(|(i, (_, v))| band(i, 0.0, *v, BLUE.to_rgba())))
            .map_err(err)?;
        Ok(false)
    })
}

/// Cost (x) against pass rate (y) per cell, with 95% whiskers; Pareto cells filled and joined.
pub fn scatter(cells: &[Cell]) -> Chart {
    let costs: Vec<f64> = cells.iter().map(|c| decimal_f64(c.cost.0)).collect();
    let max_cost = costs.iter().copied().fold(0.0, f64::max);
    let max_cost = if max_cost > 0.0 { max_cost * 1.25 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Cost vs pass rate (95% intervals; filled = Pareto front)",
                (FONT, 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..max_cost, 0.0..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("cost (USD)")
            .y_desc("pass rate")
            .x_label_formatter(&|x| format!("${}", short(*x)))
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        let whiskers = cells.iter().zip(&costs).map(|(c, x)| {
            let (rate, lo, hi) = c.pass_rate;
            ErrorBar::new_vertical(*x, lo, rate, hi, GREY.stroke_width(1), 10)
        });
        chart.draw_series(whiskers).map_err(err)?;
        let mut front: Vec<(f64, f64)> = cells
            .iter()
            .zip(&costs)
            .filter(|(c, _)| c.pareto)
            .map(|(c, x)| (*x, c.pass_rate.0))
            .collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(front, ORANGE.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(cells.iter().zip(&costs).map(|(c, x)| {
                let style = if c.pareto {
                    ORANGE.filled()
                } else {
                    BLUE.stroke_width(2)
                };
                EmptyElement::at((*x, c.pass_rate.0))
                    + Circle::new((0, 0), 5, style)
                    + Text::new(c.label(), (8, -14), (FONT, 12).into_font())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Counts per bin as bars, with vertical marks (label, x).
pub fn histogram(caption: &str, bins: &Bins, marks: &[(String, f64)], x_desc: &str) -> Chart {
    let top = bins.counts.iter().map(|c| c.0).max().unwrap_or(0).max(1) as f64 * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(bins.lo..bins.hi, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("results")
            .label_style((FONT, 12))
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(err)?;
        let w = bins.width();
        chart
            .draw_series(bins.counts.iter().enumerate().map(|(i, (n, _))| {
                let x0 = bins.lo + w * i as f64;
                let mut r = Rectangle::new([(x0, 0.0), (x0 + w, *n as f64)], BLUE.filled());
                r.set_margin(0, 0, 1, 1);
                r
            }))
            .map_err(err)?;
        for (label, x) in marks {
            let x = x.clamp(bins.lo, bins.hi);
            chart
                .draw_series(LineSeries::new(
                    [(x, 0.0), (x, top)],
                    ORANGE.stroke_width(2),
                ))
                .map_err(err)?
                .label(label.clone());
            chart
                .draw_series([Text::new(
                    label.clone(),
                    (x, top * 0.95),
                    (FONT, 12).into_font(),
                )])
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Results finished per minute and 429 answers per minute over the run.
pub fn timeline(bins: &Bins) -> Chart {
    let per_min = 60.0 / bins.width();
    let done: Vec<(f64, f64)> = series(bins, |c| c.0 as f64 * per_min);
    let limited: Vec<(f64, f64)> = series(bins, |c| c.1 as f64 * per_min);
    let top = done
        .iter()
        .chain(&limited)
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput and 429s over time (per minute)", (FONT, 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(bins.lo..bins.hi, 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .label_style((FONT, 12))
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&|y| short(*y))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(done, BLUE.stroke_width(2)))
            .map_err(err)?
            .label("results/min")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(limited, ORANGE.stroke_width(2)))
            .map_err(err)?
            .label("429s/min")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], ORANGE.stroke_width(2)));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn series(bins: &Bins, f: impl Fn(&(u64, u64)) -> f64) -> Vec<(f64, f64)> {
    let w = bins.width();
    bins.counts
        .iter()
        .enumerate()
        .map(|(i, c)| (bins.lo + w * (i as f64 + 0.5), f(c)))
        .collect()
}

/// A square of shares (0..1, `None` = never compared) between raters.
pub fn heatmap(
    caption: &str,
    raters: &[String],
    share: &dyn Fn(usize, usize) -> Option<f64>,
) -> Chart {
    let n = raters.len();
    // Columns are numbered; rows say "#i name" (long names would overlap under columns).
    let numbered: Vec<String> = raters
        .iter()
        .enumerate()
        .map(|(i, r)| format!("#{} {r}", i + 1))
        .collect();
    let numbers: Vec<String> = (1..=n).map(|i| format!("#{i}")).collect();
    let room = label_room(numbered.iter().map(|r| r.chars().count()));
    let side = (56 * n as u32).clamp(160, 560);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (side + room + 40, side + 90)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(room)
            .build_cartesian_2d((0..n).into_segmented(), (0..n).into_segmented())
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&|v| name(&numbers, v))
            .y_label_formatter(&|v| name(&numbered, v))
            .label_style((FONT, 11))
            .draw()
            .map_err(err)?;
        let cells = (0..n).flat_map(|i| (0..n).map(move |j| (i, j)));
        for (i, j) in cells {
            let value = share(i, j);
            let color = match value {
                Some(s) => RGBColor(
                    255 - (200.0 * s) as u8,
                    255 - (120.0 * s) as u8,
                    255 - (60.0 * s) as u8,
                ),
                None => RGBColor(235, 235, 235),
            };
            let at = [
                (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
            ];
            chart
                .draw_series([Rectangle::new(at, color.filled())])
                .map_err(err)?;
            let text = value.map_or("-".to_string(), |s| format!("{:.0}%", s * 100.0));
            chart
                .draw_series([Text::new(
                    text,
                    (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)),
                    (FONT, 12).into_font(),
                )])
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Per rater, the share of each value, stacked; the legend names the values.
pub fn stacked(
    caption: &str,
    raters: &[String],
    values: &[String],
    count: &dyn Fn(usize, usize) -> u64,
) -> Chart {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    bands(caption, raters, 1.0, &pct, |chart| {
        let totals: Vec<u64> = (0..raters.len())
            .map(|r| (0..values.len()).map(|v| count(r, v)).sum())
            .collect();
        for (vi, value) in values.iter().enumerate() {
            let color = Palette99::pick(vi).to_rgba();
            let segments = (0..raters.len()).map(|r| {
                let total = totals.get(r).copied().unwrap_or(0).max(1) as f64;
                let before: u64 = (0..vi).map(|v| count(r, v)).sum();
                let x0 = before as f64 / total;
                band(r, x0, x0 + count(r, vi) as f64 / total, color)
            });
            chart
                .draw_series(segments)
                .map_err(err)?
                .label(value.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        Ok(true)
    })
}

/// A Decimal as f64 for drawing (not for money arithmetic).
pub fn decimal_f64(d: rust_decimal::Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

/// A compact axis number: 1.2k, 0.0031, 45.
pub fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else {
        let digits = ((-a.log10()).floor() as usize + 2).min(10);
        format!("{x:.digits$}")
    }
}
