//! The loss curve as a PNG: train and test loss, and test accuracy, per epoch. Text is rendered
//! with a bundled DejaVu Sans through ab_glyph, so no system fonts or C libraries are needed.

use crate::train::EpochStats;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is bundled and valid; a failure here would be a build defect.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws the per-epoch curves into `path` (PNG), replacing it atomically.
pub fn loss_curves(path: &Path, history: &[EpochStats]) -> Result<()> {
    register_font();
    let tmp = path.with_extension("tmp.png");
    draw(&tmp, history).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn draw(path: &Path, history: &[EpochStats]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let n = history.len().max(2) as f64;
    let max_loss = history
        .iter()
        .flat_map(|s| [s.train_loss, s.test_loss])
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.1;

    let mut chart = ChartBuilder::on(&left)
        .caption("Loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(1.0..n, 0.0..max_loss)?;
    let ticks = history.len().clamp(2, 12);
    let epoch_fmt = |x: &f64| format!("{x:.0}");
    chart
        .configure_mesh()
        .x_labels(ticks)
        .x_label_formatter(&epoch_fmt)
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .label_style(("sans-serif", 14))
        .draw()?;
    let series = |f: fn(&EpochStats) -> f64| {
        history
            .iter()
            .map(move |s| (s.epoch as f64, f(s)))
            .collect::<Vec<_>>()
    };
    // Dots as well as lines, so a single epoch still shows.
    chart.draw_series(
        series(|s| s.train_loss)
            .into_iter()
            .map(|p| Circle::new(p, 3, BLUE.filled())),
    )?;
    chart.draw_series(
        series(|s| s.test_loss)
            .into_iter()
            .map(|p| Circle::new(p, 3, RED.filled())),
    )?;
    chart
        .draw_series(LineSeries::new(
            series(|s| s.train_loss),
            BLUE.stroke_width(2),
        ))?
        .label("train")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    chart
        .draw_series(LineSeries::new(
            series(|s| s.test_loss),
            RED.stroke_width(2),
        ))?
        .label("test")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let lo = history
        .iter()
        .map(|s| s.test_accuracy * 100.0)
        .fold(100.0f64, f64::min)
        .min(90.0);
    let mut acc = ChartBuilder::on(&right)
        .caption("Test accuracy", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(1.0..n, lo..100.0)?;
    acc.configure_mesh()
        .x_labels(ticks)
        .x_label_formatter(&epoch_fmt)
        .x_desc("epoch")
        .y_desc("%")
        .label_style(("sans-serif", 14))
        .draw()?;
    acc.draw_series(
        series(|s| s.test_accuracy * 100.0)
            .into_iter()
            .map(|p| Circle::new(p, 3, GREEN.filled())),
    )?;
    acc.draw_series(LineSeries::new(
        series(|s| s.test_accuracy * 100.0),
        GREEN.stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}
