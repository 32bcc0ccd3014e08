//! The HTML reports, each one self-contained file with SVG charts drawn by plotters: the monthly
//! process-health report from the store (`month`), and a batch's report (`batch`). The radar
//! they share is here.

pub mod batch;
pub mod month;

/// The language of the reports and of the CLI's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    Zh,
    #[default]
    En,
}

impl Lang {
    /// From a locale such as `zh_CN.UTF-8` (Chinese) or `en_US.UTF-8`; English otherwise.
    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// The HTML `lang` code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    pub fn pick<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// This language's half of a bilingual name written `中文 / English`; the name as it is
    /// otherwise.
    pub fn name(self, name: &str) -> &str {
        match name.split_once(" / ") {
            Some((zh, en)) => self.pick(zh.trim(), en.trim()),
            None => name,
        }
    }

    /// `1 call`, `2 calls`.
    pub fn count(self, n: usize, one: &str, many: &str) -> String {
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

use plotters::prelude::*;
use std::f64::consts::PI;

const SIZE: u32 = 360;
pub(crate) const REP_COLOUR: RGBColor = RGBColor(31, 119, 180);
pub(crate) const TEAM_COLOUR: RGBColor = RGBColor(160, 160, 160);

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A radar chart: one axis per dimension (0 at the centre, 100 at the rim), the rep's averages as
/// a filled polygon over the team's as an outline. A dimension never judged is drawn at 0.
pub fn radar_svg(labels: &[String], rep: &[Option<f64>], team: &[Option<f64>]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE, SIZE)).into_drawing_area();
        let _ = draw_radar(&root, labels, rep, team);
        let _ = root.present();
    }
    svg
}

fn draw_radar(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    labels: &[String],
    rep: &[Option<f64>],
    team: &[Option<f64>],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    root.fill(&WHITE)?;
    let n = labels.len().max(3);
    let centre = (SIZE as f64 / 2.0, SIZE as f64 / 2.0 + 6.0);
    let radius = SIZE as f64 * 0.31;
    let point =
        |k: usize, value: f64| point_at(centre, radius * value.clamp(0.0, 100.0) / 100.0, k, n);
    let grid = ShapeStyle::from(&RGBColor(220, 220, 220)).stroke_width(1);
    for level in [20.0, 40.0, 60.0, 80.0, 100.0] {
        let mut ring: Vec<(i32, i32)> = (0..n).map(|k| point(k, level)).collect();
        ring.push(ring[0]);
        root.draw(&PathElement::new(ring, grid))?;
    }
    let label_style = TextStyle::from(("sans-serif", 13).into_font())
        .color(&BLACK)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ));
    for (k, label) in labels.iter().enumerate() {
        root.draw(&PathElement::new(
            vec![point(k, 0.0), point(k, 100.0)],
            grid,
        ))?;
        // Labels sit beyond the rim, in the report's language (`Lang::name`).
        root.draw(&Text::new(
            label.clone(),
            point_at(centre, radius + 26.0, k, n),
            label_style.clone(),
        ))?;
    }
    let polygon = |values: &[Option<f64>]| -> Vec<(i32, i32)> {
        (0..n)
            .map(|k| point(k, values.get(k).copied().flatten().unwrap_or(0.0)))
            .collect()
    };
    let mut team_line = polygon(team);
    team_line.push(team_line[0]);
    root.draw(&PathElement::new(
        team_line,
        ShapeStyle::from(&TEAM_COLOUR).stroke_width(2),
    ))?;
    root.draw(&Polygon::new(polygon(rep), REP_COLOUR.mix(0.35).filled()))?;
    let mut rep_line = polygon(rep);
    rep_line.push(rep_line[0]);
    root.draw(&PathElement::new(
        rep_line,
        ShapeStyle::from(&REP_COLOUR).stroke_width(2),
    ))?;
    Ok(())
}

/// The point at distance `r` on axis `k` of `n`: axis 0 points up, the others follow clockwise.
fn point_at(centre: (f64, f64), r: f64, k: usize, n: usize) -> (i32, i32) {
    let angle = -PI / 2.0 + 2.0 * PI * k as f64 / n as f64;
    (
        (centre.0 + r * angle.cos()).round() as i32,
        (centre.1 + r * angle.sin()).round() as i32,
    )
}
