//! The report's two SVG plots (plotters): p99 latency against offered
//! load, one line per server; and the latency CDF of each server at the
//! highest rate it delivered in full (at least 99.9 %).

use super::Row;
use plotters::prelude::*;

/// Writes `p99_vs_load.svg` and `latency_cdf.svg` into `out`.
pub fn plot(rows: &[Row], out: &str) -> Result<(), Box<dyn std::error::Error>> {
    let servers: Vec<&str> = {
        let mut v: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
        v.dedup();
        v
    };
    let colors = [
        &BLACK,
        &RED,
        &BLUE,
        &GREEN,
        &MAGENTA,
        &CYAN,
        &RGBColor(200, 120, 0),
    ];
    // p99 against offered load.
    let path = format!("{out}/p99_vs_load.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_rate = rows.iter().map(|r| r.load.offered_rate).max().unwrap_or(1) as f64;
    let max_p99 = rows.iter().map(|r| r.load.p99_us).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("relay p99 latency against offered load", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_rate * 1.05, (1f64..max_p99 * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered transactions/s")
        .y_desc("p99 µs (log)")
        .draw()?;
    for (k, s) in servers.iter().enumerate() {
        let c = colors[k % colors.len()];
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.server == *s)
            .map(|r| (r.load.offered_rate as f64, r.load.p99_us.max(1.0)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
            .label(*s)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    // Latency CDF per server at each one's highest rate delivered in full.
    let path = format!("{out}/latency_cdf.svg");
    let root = SVGBackend::new(&path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_us = rows.iter().map(|r| r.load.p999_us).fold(10.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "relay latency CDF (each at its highest rate delivered ≥ 99.9 %)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_us * 2.0).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("latency µs (log)")
        .y_desc("fraction")
        .draw()?;
    for (k, s) in servers.iter().enumerate() {
        let c = colors[k % colors.len()];
        let Some(best) = rows
            .iter()
            .filter(|r| r.server == *s && r.load.delivered_fraction >= 0.999)
            .max_by_key(|r| r.load.offered_rate)
        else {
            continue;
        };
        chart
            .draw_series(LineSeries::new(
                best.load.cdf.iter().map(|(x, y)| (x.max(1.0), *y)),
                c.stroke_width(2),
            ))?
            .label(format!("{s} @ {}/s", best.load.offered_rate))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
