//! The run's pictures, as SVG documents built in memory with plotters' SVG backend (text stays SVG
//! `<text>`, so no font files or fontconfig are needed): `training_curve.svg` (training loss per step, with
//! validation loss and accuracy per epoch) and `confusion_matrix.svg` (gold against predicted labels on
//! the validation rows, counts and row percentages, one panel per weight type), and `cv`'s
//! `reliability.svg` (accuracy against confidence per bin).

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::history::TrainingHistory;
use crate::metrics::ReliabilityBin;

/// plotters' errors borrow nothing but are generic over the backend: flatten them to messages.
fn drawing<T, E: std::fmt::Display>(result: std::result::Result<T, E>) -> Result<T> {
    result.map_err(|e| anyhow!("drawing the SVG: {e}"))
}

/// Training loss per step (raw and as a moving mean), validation loss per epoch on the same axis, and
/// validation accuracy per epoch on a right-hand axis from 0 to 1.
pub fn training_curve(history: &TrainingHistory) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        drawing(root.fill(&WHITE))?;
        let last_step = history.global_step().max(1);
        let losses = history.steps.iter().map(|s| s.loss).chain(history.epochs.iter().map(|e| e.validation_loss));
        let top = losses.filter(|l| l.is_finite()).fold(0f64, f64::max).max(1e-3) * 1.1;
        let mut chart = drawing(
            ChartBuilder::on(&root)
                .caption("Training curve", ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .right_y_label_area_size(60)
                .build_cartesian_2d(0..last_step, 0f64..top),
        )?
        .set_secondary_coord(0..last_step, 0f64..1f64);
        drawing(chart.configure_mesh().x_desc("step").y_desc("loss").draw())?;
        drawing(chart.configure_secondary_axes().y_desc("validation accuracy").draw())?;

        let raw = BLUE.mix(0.3);
        drawing(chart.draw_series(LineSeries::new(history.steps.iter().map(|s| (s.step, s.loss)), raw)))?
            .label("training loss per step")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], raw));
        let window = (history.steps.len() / 25).max(1);
        let smoothed = moving_mean(&history.steps.iter().map(|s| s.loss).collect::<Vec<_>>(), window);
        let points = history.steps.iter().zip(smoothed).map(|(s, l)| (s.step, l));
        drawing(chart.draw_series(LineSeries::new(points, BLUE.stroke_width(2))))?
            .label(format!("training loss, mean of {window} steps"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        if !history.epochs.is_empty() {
            let validation_loss = history.epochs.iter().map(|e| (e.step, e.validation_loss));
            drawing(chart.draw_series(LineSeries::new(validation_loss, RED.stroke_width(2)).point_size(4)))?
                .label("validation loss (per epoch)")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
            let accuracy = history.epochs.iter().map(|e| (e.step, e.validation_accuracy));
            let green = RGBColor(0, 140, 70);
            drawing(chart.draw_secondary_series(LineSeries::new(accuracy, green.stroke_width(2)).point_size(4)))?
                .label("validation accuracy (per epoch, right axis)")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], green.stroke_width(2)));
        }
        framed_legend(chart.configure_series_labels(), SeriesLabelPosition::LowerLeft)?;
        drawing(root.present())?;
    }
    Ok(svg)
}

/// The series' legend at `position`, on a light box with a border.
fn framed_legend<'a, 'b, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    mut labels: plotters::chart::SeriesLabelStyle<'a, 'b, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    drawing(labels.position(position).background_style(WHITE.mix(0.85)).border_style(BLACK).draw())
}

/// Mean of each value and the `window - 1` before it (fewer at the start).
fn moving_mean(values: &[f64], window: usize) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let part = &values[(i + 1).saturating_sub(window)..=i];
            part.iter().sum::<f64>() / part.len() as f64
        })
        .collect()
}

/// One 2x2 panel per `(title, confusion)`, `confusion[gold][predicted]` as in `Metrics`: each cell shows
/// its count and its share of the gold row, shaded by that share.
pub fn confusion_matrices(panels: &[(&str, [[u64; 2]; 2])], labels: &[&str; 2]) -> Result<String> {
    let mut svg = String::new();
    {
        let width = 440 * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 400)).into_drawing_area();
        drawing(root.fill(&WHITE))?;
        let root = drawing(root.titled("Confusion matrix (validation)", ("sans-serif", 24)))?;
        for (area, (title, confusion)) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            confusion_panel(area, title, confusion, labels)?;
        }
        drawing(root.present())?;
    }
    Ok(svg)
}

/// Reliability diagram: for each `(name, bins)`, the share labelled right against the mean confidence of
/// every non-empty bin, over the diagonal of perfect calibration. Confidence is the top class's, so the
/// axes run from 0.5 to 1.
pub fn reliability_diagram(curves: &[(String, Vec<ReliabilityBin>)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 560)).into_drawing_area();
        drawing(root.fill(&WHITE))?;
        let mut chart = drawing(
            ChartBuilder::on(&root)
                .caption("Reliability (calibrated int8 scores)", ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0.45f64..1.0, 0f64..1.0),
        )?;
        drawing(chart.configure_mesh().x_desc("confidence (top class)").y_desc("share labelled right").draw())?;
        let grey = BLACK.mix(0.4);
        drawing(chart.draw_series(LineSeries::new([(0.45, 0.45), (1.0, 1.0)], grey)))?
            .label("perfect calibration")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], grey));
        for (i, (name, bins)) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = bins.iter().filter(|b| b.count > 0).map(|b| (b.mean_confidence, b.accuracy));
            drawing(chart.draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(4)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        framed_legend(chart.configure_series_labels(), SeriesLabelPosition::UpperLeft)?;
        drawing(root.present())?;
    }
    Ok(svg)
}

/// Sans-serif text of `size` pixels, centred on its position.
fn centered(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(color).pos(Pos::new(HPos::Center, VPos::Center))
}

fn confusion_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    confusion: &[[u64; 2]; 2],
    labels: &[&str; 2],
) -> Result<()> {
    const CELL: i32 = 120;
    let (left, top) = (110, 70);
    let label = centered(16.0, &BLACK);
    drawing(area.draw(&Text::new(title.to_string(), (left + CELL, 16), centered(18.0, &BLACK))))?;
    drawing(area.draw(&Text::new("predicted", (left + CELL, 40), label.clone())))?;
    drawing(area.draw(&Text::new("gold", (left - 80, top + CELL), label.clone())))?;
    for (i, name) in labels.iter().enumerate() {
        let offset = i as i32 * CELL + CELL / 2;
        drawing(area.draw(&Text::new(name.to_string(), (left + offset, top - 12), label.clone())))?;
        drawing(area.draw(&Text::new(name.to_string(), (left - 30, top + offset), label.clone())))?;
    }
    for (gold, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<u64>().max(1) as f64;
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let (x, y) = (left + predicted as i32 * CELL, top + gold as i32 * CELL);
            let shade = |full: u8| (255.0 - share * (255.0 - f64::from(full))).round() as u8;
            let fill = RGBColor(shade(33), shade(102), shade(172));
            drawing(area.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], fill.filled())))?;
            drawing(area.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], BLACK.stroke_width(1))))?;
            let ink: &'static RGBColor = if share > 0.5 { &WHITE } else { &BLACK };
            drawing(area.draw(&Text::new(count.to_string(), (x + CELL / 2, y + CELL / 2 - 12), centered(22.0, ink))))?;
            let percent = format!("{:.1} %", share * 100.0);
            drawing(area.draw(&Text::new(percent, (x + CELL / 2, y + CELL / 2 + 16), centered(15.0, ink))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EpochRecord, StepLoss};

    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn confusion_matrix_shows_counts_and_row_percentages() {
        let svg = confusion_matrices(&[("f32", [[30, 10], [5, 55]]), ("int8", [[29, 11], [5, 55]])], &["human", "bot"])
            .unwrap();
        assert_well_formed(&svg);
        for needle in [
            "f32",
            "int8",
            "human",
            "bot",
            "predicted",
            "gold",
            ">\n30\n<",
            "75.0 %",
            "25.0 %",
            "8.3 %",
            "91.7 %",
            "72.5 %",
            ">\n29\n<",
        ] {
            assert!(svg.contains(needle), "{needle:?} missing from the confusion matrix SVG");
        }
    }

    #[test]
    fn training_curve_draws_losses_and_epoch_metrics() {
        let steps: Vec<StepLoss> =
            (1..=40).map(|step| StepLoss { step, loss: 0.7 / (1.0 + step as f64 / 10.0) }).collect();
        let epoch = |epoch, step| EpochRecord {
            epoch,
            step,
            train_loss: 0.5,
            validation_loss: 0.45,
            validation_accuracy: 0.8,
            validation_f1: 0.8,
            validation_mcc: 0.6,
            last_weights_accuracy: None,
            samples_per_s: 10.0,
        };
        let svg = training_curve(&TrainingHistory { steps, epochs: vec![epoch(1, 20), epoch(2, 40)] }).unwrap();
        assert_well_formed(&svg);
        for needle in [
            "Training curve",
            "step",
            "loss",
            "training loss per step",
            "validation loss",
            "validation accuracy",
            "<polyline",
        ] {
            assert!(svg.contains(needle), "{needle:?} missing from the training curve SVG");
        }
        // A plain export has no epochs; a single step still draws.
        let svg =
            training_curve(&TrainingHistory { steps: vec![StepLoss { step: 1, loss: 0.69 }], epochs: Vec::new() })
                .unwrap();
        assert_well_formed(&svg);
    }

    #[test]
    fn moving_mean_uses_the_values_so_far_at_the_start() {
        assert_eq!(moving_mean(&[1.0, 3.0, 5.0, 7.0], 2), [1.0, 2.0, 4.0, 6.0]);
    }
}
