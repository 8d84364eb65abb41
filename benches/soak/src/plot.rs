//! The PNG: memory, added latency and throughput over the run, one panel each (plotters, pure
//! Rust bitmap backend; text through ab_glyph with a TTF font read at run time).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::report::Row;

/// Fonts tried when `--font` is not given (Debian's `fonts-dejavu-core` and common others).
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers a font as "sans-serif"; fails when none can be read.
fn register(font: Option<&Path>) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match font {
        Some(p) => vec![p.to_path_buf()],
        None => FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                return Ok(path);
            }
        }
    }
    Err("no TTF font found for the plot labels: pass --font PATH (e.g. a DejaVuSans.ttf)".into())
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    x_max: f64,
    series: &[Series<'_>],
) -> Result<(), String> {
    let y_max = series
        .iter()
        .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max.max(0.1), 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for (name, color, pts) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn points(rows: &[Row], f: impl Fn(&Row) -> Option<f64>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| f(r).map(|v| (r.elapsed_s / 60.0, v)))
        .collect()
}

/// Draws `rows` into `path`; returns the font used.
pub fn render(
    path: &Path,
    title: &str,
    rows: &[Row],
    font: Option<&Path>,
) -> Result<PathBuf, String> {
    let font = register(font)?;
    let root = BitMapBackend::new(path, (1280, 1100)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err)?;
    let panels = root.split_evenly((3, 1));
    let x_max = rows.last().map_or(1.0, |r| r.elapsed_s / 60.0);
    let mut memory: Vec<Series<'_>> = vec![("cch RSS (MB)", RED, points(rows, |r| Some(r.rss_mb)))];
    if rows.iter().any(|r| r.redis_used_mb.is_some()) {
        memory.push((
            "Redis used_memory (MB)",
            BLUE,
            points(rows, |r| r.redis_used_mb),
        ));
    }
    panel(&panels[0], "Memory", "MB", x_max, &memory)?;
    panel(
        &panels[1],
        "Latency added by cch (clean requests, vs direct baseline)",
        "ms",
        x_max,
        &[
            ("added p50", GREEN, points(rows, |r| r.added_p50_ms)),
            ("added p99", MAGENTA, points(rows, |r| r.added_p99_ms)),
        ],
    )?;
    panel(
        &panels[2],
        "Throughput",
        "requests/s",
        x_max,
        &[
            (
                "completed",
                BLACK,
                points(rows, |r| (r.elapsed_s > 0.0).then_some(r.throughput)),
            ),
            (
                "not ok (429, 5xx, stream errors)",
                RED,
                points(rows, |r| (r.elapsed_s > 0.0).then_some(r.not_ok_per_s)),
            ),
        ],
    )?;
    root.present().map_err(|e| e.to_string())?;
    Ok(font)
}
