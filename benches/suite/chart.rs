//! The suite's main rows as an SVG chart (plotters' SVG backend: no system fonts needed),
//! written next to `results.json`: one group of horizontal bars per rate row (deliveries/s,
//! msgs/s), one bar per server column, on a log scale so that RabbitMQ's and wsbroker's
//! figures both show.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{Cell, Row};

/// Colours of the three columns (wsbroker or cluster / RabbitMQ or relay / naive or one node).
const COLOURS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
];

/// The rows charted: rates, where more is better.
fn charted(row: &Row) -> bool {
    let metric = row.metric();
    metric.contains("deliveries/s") && !metric.contains(" / ") || metric.ends_with(" msgs/s")
}

/// Writes the chart of `rows` to `file`.
pub(crate) fn write_svg(rows: &[Row], title: &str, file: &Path) -> Result<(), String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| charted(r)).collect();
    if rows.is_empty() {
        return Err("no rate rows to chart".into());
    }
    let max = rows
        .iter()
        .flat_map(|r| values(r))
        .flatten()
        .fold(1.0_f64, f64::max);
    let height = 120 + rows.len() as u32 * 42;
    let root = SVGBackend::new(file, (1100, height)).into_drawing_area();
    let error = |e: DrawingAreaErrorKind<_>| format!("{}: {e:?}", file.display());
    root.fill(&WHITE).map_err(error)?;
    let names: Vec<String> = rows.iter().map(|r| short(r.metric())).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(430)
        .build_cartesian_2d(
            // Room on the right for the legend.
            (1_000.0..max * 30.0).log_scale(),
            0.0..rows.len() as f64,
        )
        .map_err(error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("per second (log scale)")
        .x_label_formatter(&|v| si(*v))
        .draw()
        .map_err(error)?;
    // Row names left of their group, right-aligned (the y axis itself has no labels).
    let label_style = ("sans-serif", 13)
        .into_font()
        .into_text_style(&root)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let middle = (rows.len() - 1 - i) as f64 + 0.5;
        let (x, y) = chart.backend_coord(&(1_000.0, middle));
        root.draw(&Text::new(name.clone(), (x - 8, y), label_style.clone()))
            .map_err(error)?;
    }
    for (column, colour) in COLOURS.iter().enumerate() {
        let bars = rows.iter().enumerate().filter_map(|(i, row)| {
            let v = values(row)[column]?;
            // Row 0 at the top.
            let base = (rows.len() - 1 - i) as f64;
            let top = base + 0.85 - column as f64 * 0.25;
            Some(Rectangle::new(
                [(1_000.0, top - 0.22), (v.max(1_000.0), top)],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(error)?
            .label(["wsbroker / cluster", "RabbitMQ / relay", "naive / one node"][column])
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(error)?;
    root.present().map_err(error)?;
    Ok(())
}

/// A row's positive figures, in column order.
fn values(row: &Row) -> Vec<Option<f64>> {
    row.cells()
        .map(|c| match c {
            Cell::Measured(v) if v.is_finite() && *v > 0.0 => Some(*v),
            _ => None,
        })
        .collect()
}

/// A row's name without the column explanation.
fn short(metric: &str) -> String {
    let name = metric.split(" (col").next().unwrap_or(metric);
    if name.len() > 60 {
        format!("{}…", &name[..name.floor_char_boundary(59)])
    } else {
        name.to_string()
    }
}

/// 1500000 → "1.5M".
fn si(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.0}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}
