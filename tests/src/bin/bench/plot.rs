//! PNG charts for the report (plotters, with the DejaVu font Debian ships).

use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;

/// One bar of a group: median with a min–max whisker.
#[derive(Clone, Copy, Debug)]
pub struct Bar {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// A named series, one bar per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: RGBColor,
    pub bars: Vec<Option<Bar>>,
}

pub const HAVIPD: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const KEEPALIVED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

/// Load a TrueType font for plotters' text; without one, charts are skipped.
pub fn register_font() -> bool {
    for path in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ] {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Grouped bars with whiskers, one group per category.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series<'_>],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let y_max = series
        .iter()
        .flat_map(|s| s.bars.iter().flatten().map(|b| b.max.max(b.median)))
        .fold(0.0_f64, f64::max)
        * 1.15
        + f64::EPSILON;
    let groups = categories.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..groups as f64, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            categories.get(i).cloned().unwrap_or_default()
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        let color = s.color;
        let bars: Vec<(f64, Bar)> = s
            .bars
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| (i as f64 + 0.1 + k as f64 * width, b)))
            .collect();
        chart
            .draw_series(bars.iter().map(|(x, b)| {
                Rectangle::new([(*x, 0.0), (*x + width * 0.9, b.median)], color.filled())
            }))?
            .label(s.name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(bars.iter().map(|(x, b)| {
            let mid = *x + width * 0.45;
            PathElement::new(vec![(mid, b.min), (mid, b.max)], BLACK.stroke_width(2))
        }))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
