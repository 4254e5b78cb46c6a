//! Small line charts of the last 24 hours, drawn on the server as inline SVG:
//! no script, no library, and nothing the backoffice's Content-Security-Policy
//! refuses (colours and fonts are presentation attributes, not `style`).
//!
//! A chart takes series of counts per minute (`domain::traffic`), sums them
//! into five-minute buckets, and draws one polyline per series under a legend
//! with each series' total; its `<title>` says the totals in words for screen
//! readers. Every text that comes from outside (an event type, a listener's
//! name) is escaped here, which is why the pages may embed [`Svg`] unescaped.

use std::fmt::{self, Write};

use crate::domain::traffic::{buckets, Series, OTHER};

/// Minutes per point: a day of minutes becomes 288 points.
const PER: usize = 5;
const WIDTH: u32 = 720;
const LEFT: u32 = 44;
const RIGHT: u32 = 8;
const PLOT_HEIGHT: u32 = 120;
const LEGEND_ROW: u32 = 18;
/// Hour marks under the plot, as (hours before now, label).
const HOURS: [(u32, &str); 5] = [
    (24, "24 h ago"),
    (18, "18 h ago"),
    (12, "12 h ago"),
    (6, "6 h ago"),
    (0, "now"),
];
/// Line colours in series order; "other" is always grey.
const COLOURS: [&str; 5] = ["#0e6e64", "#c0392b", "#1d46b8", "#b7791f", "#7a4fd1"];
const GREY: &str = "#5a6675";
const TEXT: &str = "#5a6675";
const GRID: &str = "#dde2e8";

/// An SVG document this module drew, safe to embed in a page as it is.
pub struct Svg(String);

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to draw: `id` (unique on the page) names the chart for its
/// `<title>`; `what` says what is counted, e.g. "Delivery attempts".
pub struct Chart<'a> {
    pub id: &'a str,
    pub what: &'a str,
    /// Per-minute counts of the window, oldest first, one series per line.
    pub series: &'a [Series],
}

impl Chart<'_> {
    pub fn draw(&self) -> Svg {
        let lines: Vec<Line> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, (name, minutes))| Line {
                label: name,
                points: buckets(minutes, PER),
                colour: if name == OTHER {
                    GREY
                } else {
                    COLOURS[i % COLOURS.len()]
                },
            })
            .collect();
        let legend = legend_rows(&lines);
        let top = 8 + LEGEND_ROW * legend.len() as u32 + 8;
        let bottom = top + PLOT_HEIGHT;
        let height = bottom + 22;
        let peak = lines
            .iter()
            .flat_map(|l| l.points.iter().copied())
            .max()
            .unwrap_or(0);
        let scale = nice(peak);
        let title_id = format!("{}-title", escape(self.id));

        let mut s = String::with_capacity(8 * 1024);
        let _ = write!(
            s,
            r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{title_id}" font-family="system-ui, sans-serif" font-size="11">"#,
            id = escape(self.id),
        );
        let _ = write!(
            s,
            r#"<title id="{title_id}">{}</title>"#,
            escape(&self.title(&lines))
        );
        for (row, entries) in legend.iter().enumerate() {
            let y = 8 + LEGEND_ROW * row as u32;
            for (x, line) in entries {
                let _ = write!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="10" height="10" rx="2" fill="{c}"/><text x="{tx}" y="{ty}" fill="{TEXT}">{label} ({total})</text>"#,
                    c = line.colour,
                    tx = x + 14,
                    ty = y + 9,
                    label = escape(line.label),
                    total = line.total(),
                );
            }
        }
        axes(&mut s, top, bottom, scale);
        if peak == 0 {
            let _ = write!(
                s,
                r#"<text x="{x}" y="{y}" text-anchor="middle" fill="{TEXT}">No traffic in the last 24 h</text>"#,
                x = LEFT + (WIDTH - LEFT - RIGHT) / 2,
                y = top + PLOT_HEIGHT / 2,
            );
        } else {
            for line in &lines {
                polyline(&mut s, line, top, scale);
            }
        }
        s.push_str("</svg>");
        Svg(s)
    }

    /// "Delivery attempts over the last 24 h, per 5 minutes: 3 delivered, 1 failed."
    fn title(&self, lines: &[Line]) -> String {
        let totals: Vec<String> = lines
            .iter()
            .filter(|l| l.total() > 0)
            .map(|l| format!("{} {}", l.total(), l.label))
            .collect();
        let said = if totals.is_empty() {
            "none".to_string()
        } else {
            totals.join(", ")
        };
        format!(
            "{} over the last 24 h, per {PER} minutes: {said}.",
            self.what
        )
    }
}

struct Line<'a> {
    label: &'a str,
    /// Counts per bucket, oldest first.
    points: Vec<u64>,
    colour: &'static str,
}

impl Line<'_> {
    fn total(&self) -> u64 {
        self.points.iter().sum()
    }
}

/// The legend's entries, as rows of (x, line), wrapped to the chart's width
/// (a character is taken as 6.5 units wide).
fn legend_rows<'l, 'a>(lines: &'l [Line<'a>]) -> Vec<Vec<(u32, &'l Line<'a>)>> {
    let mut rows: Vec<Vec<(u32, &Line)>> = vec![Vec::new()];
    let mut x = LEFT;
    for line in lines {
        let text = line.label.chars().count() + line.total().to_string().len() + 3;
        let width = 14 + (text as u32 * 13).div_ceil(2) + 16;
        if x + width > WIDTH && x > LEFT {
            rows.push(Vec::new());
            x = LEFT;
        }
        if let Some(row) = rows.last_mut() {
            row.push((x, line));
        }
        x += width;
    }
    rows
}

/// The frame: the top and middle grid lines with their values, the base
/// line, and the hour marks under it.
fn axes(s: &mut String, top: u32, bottom: u32, scale: u64) {
    let right = WIDTH - RIGHT;
    let mid = (top + bottom) / 2;
    // 2.5 for a scale of 5; f64 shows whole numbers without a point.
    let half = (scale as f64 / 2.0).to_string();
    for (y, value) in [(top, scale.to_string()), (mid, half)] {
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" y1="{y}" x2="{right}" y2="{y}" stroke="{GRID}" stroke-dasharray="3 3"/><text x="{x}" y="{ty}" text-anchor="end" fill="{TEXT}">{value}</text>"#,
            x = LEFT - 6,
            ty = y + 4,
        );
    }
    let _ = write!(
        s,
        r#"<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{TEXT}"/><text x="{x}" y="{ty}" text-anchor="end" fill="{TEXT}">0</text>"#,
        x = LEFT - 6,
        ty = bottom + 4,
    );
    for (hours, label) in HOURS {
        let x = f64::from(right) - f64::from(right - LEFT) * f64::from(hours) / 24.0;
        let anchor = match hours {
            24 => "start",
            0 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r#"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{tick}" stroke="{TEXT}"/><text x="{x:.1}" y="{ty}" text-anchor="{anchor}" fill="{TEXT}">{label}</text>"#,
            tick = bottom + 4,
            ty = bottom + 16,
        );
    }
}

fn polyline(s: &mut String, line: &Line, top: u32, scale: u64) {
    let n = line.points.len().max(1) as f64;
    let span = f64::from(WIDTH - RIGHT - LEFT);
    let _ = write!(
        s,
        r#"<polyline data-series="{name}" data-total="{total}" fill="none" stroke="{c}" stroke-width="1.5" stroke-linejoin="round" points=""#,
        name = escape(line.label),
        total = line.total(),
        c = line.colour,
    );
    for (i, &v) in line.points.iter().enumerate() {
        let x = f64::from(LEFT) + span * (i as f64 + 0.5) / n;
        let y = f64::from(top) + f64::from(PLOT_HEIGHT) * (1.0 - v as f64 / scale as f64);
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:.1},{y:.1}");
    }
    s.push_str(r#""/>"#);
}

/// The smallest 1, 2 or 5 times a power of ten at or above `peak` (1 for none).
fn nice(peak: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for step in [1, 2, 5] {
            let v = unit.saturating_mul(step);
            if v >= peak || v == u64::MAX {
                return v;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::traffic::WINDOW;

    fn series(name: &str, at: &[(usize, u32)]) -> Series {
        let mut minutes = vec![0; WINDOW as usize];
        for &(i, n) in at {
            minutes[i] = n;
        }
        (name.to_string(), minutes)
    }

    fn draw(series: &[Series]) -> String {
        Chart {
            id: "c",
            what: "Events",
            series,
        }
        .draw()
        .to_string()
    }

    #[test]
    fn no_traffic_says_so_and_draws_no_line() {
        let svg = draw(&[series("delivered", &[]), series("failed", &[])]);
        assert!(svg.starts_with(r#"<svg class="chart" id="c" viewBox="0 0 720 "#));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("No traffic in the last 24 h"), "{svg}");
        assert!(!svg.contains("<polyline"));
        assert!(svg.contains(
            r#"<title id="c-title">Events over the last 24 h, per 5 minutes: none.</title>"#
        ));
        assert!(svg.contains("24 h ago") && svg.contains(">now<"));
        assert!(draw(&[]).contains("No traffic"));
    }

    #[test]
    fn a_spike_reaches_the_top_of_its_scale_at_its_time() {
        // 3 in the last minute: the last of 288 points, at the top (scale 5
        // would leave it lower; 3 rounds up to 5, so 3/5 of the height).
        let svg = draw(&[series("delivered", &[(WINDOW as usize - 1, 3)])]);
        assert!(
            svg.contains(r#"data-series="delivered" data-total="3""#),
            "{svg}"
        );
        assert!(svg.contains(">5</text>"), "the scale's top is 5: {svg}");
        let points = svg.split(r#"points=""#).nth(1).unwrap();
        let points: Vec<&str> = points.split('"').next().unwrap().split(' ').collect();
        assert_eq!(points.len(), 288);
        let top = 8 + LEGEND_ROW + 8;
        let base = format!(",{:.1}", f64::from(top + PLOT_HEIGHT));
        assert!(
            points[..287].iter().all(|p| p.ends_with(&base)),
            "flat before"
        );
        let y = f64::from(top) + f64::from(PLOT_HEIGHT) * (1.0 - 3.0 / 5.0);
        assert!(
            points[287].ends_with(&format!(",{y:.1}")),
            "{}",
            points[287]
        );
        assert!(svg.contains("per 5 minutes: 3 delivered."));
    }

    #[test]
    fn many_series_each_get_a_line_a_colour_and_a_legend_entry() {
        let all: Vec<Series> = (0..6)
            .map(|i| {
                series(
                    &format!("whatsapp.type.number{i}"),
                    &[(i * 10, i as u32 + 1)],
                )
            })
            .chain([series(OTHER, &[(5, 4)])])
            .collect();
        let svg = draw(&all);
        assert_eq!(svg.matches("<polyline").count(), 7);
        assert_eq!(svg.matches("<rect").count(), 7);
        assert!(
            svg.contains(r##"data-series="other" data-total="4" fill="none" stroke="#5a6675""##)
        );
        // Seven long names do not fit on one line of 720: the legend wraps.
        let ys: std::collections::BTreeSet<&str> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| r.split(r#"y=""#).nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert!(ys.len() > 1, "{ys:?}");
        assert!(svg.contains("1 whatsapp.type.number0, 2 whatsapp.type.number1"));
    }

    #[test]
    fn names_are_escaped_everywhere() {
        let svg = Chart {
            id: "x\"y",
            what: "Events <by type>",
            series: &[series("whatsapp.<script>&\"'", &[(0, 1)])],
        }
        .draw()
        .to_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("whatsapp.&lt;script&gt;&amp;&quot;&#39; (1)"));
        assert!(svg.contains(r#"data-series="whatsapp.&lt;script&gt;&amp;&quot;&#39;""#));
        assert!(svg.contains("Events &lt;by type&gt; over"));
        assert!(svg.contains(r#"id="x&quot;y""#));
    }

    #[test]
    fn scales_are_round_numbers() {
        let got: Vec<u64> = [0, 1, 2, 3, 7, 10, 11, 260].map(nice).to_vec();
        assert_eq!(got, [1, 1, 2, 5, 10, 10, 20, 500]);
        assert_eq!(nice(u64::MAX), u64::MAX);
    }
}
