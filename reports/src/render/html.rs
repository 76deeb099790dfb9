//! `timeline.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the verdict and the violations on top, then a lane per candidate showing when it
//! believed it led (`.belief`) and when the lock named it (`.lock`), faults shaded (`.fault`),
//! checkpoints (`.checkpoint`), restores (`.restore`), crashes, stops, and a red band per
//! violation (`.violation`, `#violation-N`) at the times of the entries it names; a legend, and
//! the text timeline at the bottom.

use std::fmt::Write as _;

use khaos_elector::jobmaster::Event;

use super::{JudgedRun, settings_line, show_checkpoint, xml_escape};
use crate::checkers;
use crate::faults::Fault;
use crate::history::{Entry, HarnessEvent, Record};

/// The HTML timeline's drawing: its width, the lane label column, one lane and one fault row.
const WIDTH_PX: f64 = 1200.0;
const LABEL_PX: f64 = 130.0;
const RIGHT_PX: f64 = 20.0;
const LANE_PX: f64 = 44.0;
const FAULT_ROW_PX: f64 = 12.0;
/// At most this many fault rows are stacked; further overlapping faults share the last row.
const FAULT_ROWS_MAX: usize = 12;
const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d1d1f; }
h1 { font-size: 20px; margin: 0 0 4px; }
code, pre { font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; }
pre { background: #f6f6f8; padding: 8px; overflow-x: auto; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 4px; font-weight: 600; color: #fff; }
.badge.ok { background: #2e7d32; }
.badge.violated { background: #c62828; }
#violations { border-left: 4px solid #c62828; background: #fdecea; padding: 6px 12px; margin: 12px 0; }
#violations h2 { margin: 0; font-size: 16px; color: #c62828; }
.violation-item .checker { font-weight: 600; }
table.verdicts { border-collapse: collapse; margin: 8px 0; }
table.verdicts td, table.verdicts th { border-bottom: 1px solid #ddd; padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
td.state-ok { color: #2e7d32; } td.state-violated { color: #c62828; font-weight: 600; }
#legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 8px 0; font-size: 12px; }
#legend span { display: inline-flex; align-items: center; gap: 4px; }
svg { display: block; margin: 8px 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .axis line { stroke: #ccc; }
svg .lane-bg { fill: #fafafa; stroke: #e4e4e4; }
svg .lane-label { font-weight: 600; }
svg .belief { fill: #1565c0; }
svg .lock { fill: #81c784; }
svg .fault { fill: #ffb74d; fill-opacity: 0.8; }
svg text.fault-label { font-size: 9px; fill: #5d4037; pointer-events: none; }
svg .fault-shade { fill: #ffb74d; fill-opacity: 0.18; }
svg .checkpoint { stroke: #37474f; stroke-width: 1; }
svg .restore { fill: #8e24aa; }
svg .crash { stroke: #c62828; stroke-width: 2; }
svg .stop { fill: #546e7a; }
svg .start { fill: #2e7d32; }
svg .fenced { fill: #000; }
svg .job-failover { fill: #ef6c00; }
svg .phase line { stroke: #555; stroke-dasharray: 4 3; }
svg .violation { fill: #e53935; fill-opacity: 0.28; stroke: #c62828; stroke-width: 1; }
svg .violation-marker { fill: #c62828; }
"#;

/// Where things go: time to x.
struct Scale {
    end_ms: u64,
}

impl Scale {
    fn x(&self, t_ms: u64) -> f64 {
        let plot = WIDTH_PX - LABEL_PX - RIGHT_PX;
        LABEL_PX + plot * (t_ms.min(self.end_ms) as f64) / (self.end_ms.max(1) as f64)
    }
}

/// A fault's bar: from its start to its end (or the end of the history).
struct FaultBar<'a> {
    start_ms: u64,
    end_ms: u64,
    fault: &'a Fault,
    /// The fault in words.
    text: String,
}

/// The history's faults, in the order of their bars: by start, then end.
fn fault_bars(history: &[Entry]) -> Vec<FaultBar<'_>> {
    let end_ms = history.last().map_or(0, |e| e.t_ms);
    let mut bars: Vec<FaultBar<'_>> = checkers::fault_spans(history)
        .into_iter()
        .map(|span| FaultBar {
            start_ms: span.start_ms,
            end_ms: span.end_ms.unwrap_or(end_ms),
            fault: span.fault,
            text: span.fault.to_string(),
        })
        .collect();
    bars.sort_by_key(|bar| (bar.start_ms, bar.end_ms));
    bars
}

/// Stack spans into rows so none overlaps another in its row.
fn pack(spans: &[FaultBar<'_>], scale: &Scale) -> Vec<usize> {
    let mut row_ends: Vec<f64> = Vec::new();
    spans
        .iter()
        .map(|span| {
            let (x0, x1) = (
                scale.x(span.start_ms),
                scale.x(span.end_ms).max(scale.x(span.start_ms) + 2.0),
            );
            match row_ends.iter().position(|end| *end <= x0) {
                Some(row) => {
                    row_ends[row] = x1;
                    row
                }
                None if row_ends.len() < FAULT_ROWS_MAX => {
                    row_ends.push(x1);
                    row_ends.len() - 1
                }
                None => FAULT_ROWS_MAX - 1,
            }
        })
        .collect()
}

/// The times a message spells out as `t=N ms`.
pub(super) fn times_in(message: &str) -> impl Iterator<Item = u64> + '_ {
    message
        .match_indices("t=")
        .filter(|(at, _)| {
            !message[..*at]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
        })
        .filter_map(|(at, _)| {
            let rest = &message[at + 2..];
            let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
            rest[digits.len()..]
                .starts_with(" ms")
                .then(|| digits.parse().ok())
                .flatten()
        })
}

/// A fault's description without its parameters (`apiserver faults {...}`: `apiserver
/// faults`), to label its bar.
fn short(fault: &str) -> &str {
    fault.split(" {").next().unwrap_or(fault)
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most about ten ticks.
fn tick_step_ms(end_ms: u64) -> u64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if end_ms / (step * factor) <= 10 {
                return step * factor;
            }
        }
        step *= 10;
    }
}

fn seconds(t_ms: u64) -> String {
    if t_ms.is_multiple_of(1000) {
        format!("{} s", t_ms / 1000)
    } else {
        format!("{:.1} s", t_ms as f64 / 1000.0)
    }
}

fn esc(text: &str) -> String {
    xml_escape(text)
}

/// A lane's id: `lane-` and the node with anything but letters, digits, `-` and `_` as `_`.
pub(super) fn lane_id(node: &str) -> String {
    let safe: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("lane-{safe}")
}

impl JudgedRun {
    /// `timeline.html` (see the module's summary).
    pub fn timeline_html(&self) -> String {
        let drawing = Drawing::new(self);
        let mut page = String::new();
        head(self, &mut page);
        violations_list(self, &mut page);
        legend(&mut page);
        drawing.svg(&mut page);
        verdicts_table(self, &mut page);
        let _ = writeln!(
            page,
            "<details id=\"text-timeline\"><summary>The timeline as text</summary><pre>{}</pre></details>",
            esc(&self.timeline_text())
        );
        page.push_str("</body>\n</html>\n");
        page
    }
}

/// The page's head, title, verdict badge, settings, replay line and digest.
fn head(run: &JudgedRun, page: &mut String) {
    let info = &run.info;
    let verdict = run.verdict();
    let badge = if run.ok() { "ok" } else { "violated" };
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>khaos: {} - {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        esc(&info.title()),
        esc(&verdict)
    );
    let _ = writeln!(
        page,
        "<header id=\"header\">\n<h1>khaos: {} <span id=\"verdict\" class=\"badge {badge}\">{}</span></h1>",
        esc(&info.title()),
        esc(&verdict)
    );
    let _ = writeln!(
        page,
        "<div id=\"settings\">{}</div>",
        esc(&settings_line(&info.context))
    );
    if let Some(replay) = &info.replay {
        let _ = writeln!(
            page,
            "<div>replay: <code id=\"replay\">{}</code></div>",
            esc(replay)
        );
    }
    if let Some(digest) = &info.digest {
        let _ = writeln!(
            page,
            "<div>history digest: <code>{}</code></div>",
            esc(digest)
        );
    }
    page.push_str("</header>\n");
}

/// What broke, in words, before the drawing.
fn violations_list(run: &JudgedRun, page: &mut String) {
    let violations = run.violations();
    if violations.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<section id=\"violations\">\n<h2>{} violation{}</h2>\n<ol>",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for (number, (checker, violation)) in violations.iter().enumerate() {
        let lines: Vec<String> = violation
            .entries
            .iter()
            .filter_map(|i| {
                run.history
                    .get(*i)
                    .map(|e| format!("line {}: {}", i + 1, e.to_line()))
            })
            .collect();
        let _ = writeln!(
            page,
            "<li class=\"violation-item\" id=\"violation-item-{}\" data-checker=\"{checker}\"><a href=\"#violation-{}\"><span class=\"checker\">{checker}</span></a>: <span class=\"message\">{}</span><pre>{}</pre></li>",
            number + 1,
            number + 1,
            esc(&violation.message),
            esc(&lines.join("\n"))
        );
    }
    page.push_str("</ol>\n</section>\n");
}

/// A swatch and a word for every mark the drawing uses.
fn legend(page: &mut String) {
    page.push_str("<div id=\"legend\">");
    for (class, words, shape) in [
        ("lock", "the lock names it", "rect"),
        ("belief", "believes it leads", "rect"),
        ("fault", "fault", "rect"),
        ("fault-shade", "fault naming this node", "rect"),
        ("checkpoint", "checkpoint", "line"),
        ("restore", "restore", "diamond"),
        ("crash", "crash", "cross"),
        ("stop", "stop", "rect"),
        ("start", "start", "triangle"),
        ("job-failover", "job failover", "circle"),
        ("fenced", "fenced", "circle"),
        ("violation", "violation", "rect"),
    ] {
        let swatch = match shape {
            "line" => format!("<line class=\"{class}\" x1=\"7\" y1=\"1\" x2=\"7\" y2=\"11\"/>"),
            "diamond" => format!("<path class=\"{class}\" d=\"M7 1 l5 5 l-5 5 l-5 -5 z\"/>"),
            "cross" => format!("<path class=\"{class}\" d=\"M2 1 l10 10 m0 -10 l-10 10\"/>"),
            "triangle" => format!("<path class=\"{class}\" d=\"M3 1 l8 5 l-8 5 z\"/>"),
            "circle" => format!("<circle class=\"{class}\" cx=\"7\" cy=\"6\" r=\"4\"/>"),
            _ => {
                format!("<rect class=\"{class}\" x=\"0\" y=\"1\" width=\"14\" height=\"10\"/>")
            }
        };
        let _ = write!(
            page,
            "<span><svg width=\"14\" height=\"12\" xmlns=\"http://www.w3.org/2000/svg\">{swatch}</svg>{words}</span>"
        );
    }
    page.push_str("</div>\n");
}

/// The verdicts with their figures.
fn verdicts_table(run: &JudgedRun, page: &mut String) {
    page.push_str("<table class=\"verdicts\" id=\"verdicts\">\n<tr><th>checker</th><th>verdict</th><th>figures</th></tr>\n");
    for verdict in &run.verdicts {
        let (class, state) = if verdict.ok() {
            ("state-ok", "ok")
        } else {
            ("state-violated", "VIOLATED")
        };
        let figures: Vec<String> = verdict
            .figures
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(
            page,
            "<tr data-checker=\"{}\"><td>{}</td><td class=\"{class}\">{state}</td><td><code>{}</code></td></tr>",
            verdict.checker,
            verdict.checker,
            esc(&figures.join(" "))
        );
    }
    page.push_str("</table>\n");
}

/// The SVG drawing's layout: the time axis, a band of fault bars packed into rows, then one lane
/// per candidate.
struct Drawing<'a> {
    run: &'a JudgedRun,
    scale: Scale,
    candidates: Vec<String>,
    locks: Vec<checkers::LockChange>,
    leaderships: Vec<checkers::Leadership>,
    faults: Vec<FaultBar<'a>>,
    /// The row of each fault bar.
    rows: Vec<usize>,
    faults_y: f64,
    lanes_y: f64,
    height: f64,
}

impl<'a> Drawing<'a> {
    fn new(run: &'a JudgedRun) -> Drawing<'a> {
        let history = &run.history[..];
        let end_ms = history.last().map_or(0, |e| e.t_ms).max(1);
        let scale = Scale { end_ms };
        let locks = checkers::lock_changes(history, &run.info.context);
        let candidates = run.candidates(&locks);
        let faults = fault_bars(history);
        let rows = pack(&faults, &scale);
        let fault_rows = rows.iter().max().map_or(0, |r| r + 1);
        let faults_y = 28.0;
        let faults_h = (fault_rows.max(1) as f64) * FAULT_ROW_PX + 4.0;
        let lanes_y = faults_y + faults_h + 8.0;
        let height = lanes_y + LANE_PX * candidates.len().max(1) as f64 + 10.0;
        Drawing {
            run,
            scale,
            candidates,
            locks,
            leaderships: checkers::leaderships(history),
            faults,
            rows,
            faults_y,
            lanes_y,
            height,
        }
    }

    /// The top of `node`'s lane, if it has one.
    fn lane_y(&self, node: &str) -> Option<f64> {
        self.candidates
            .iter()
            .position(|c| c == node)
            .map(|i| self.lanes_y + LANE_PX * i as f64)
    }

    fn svg(&self, out: &mut String) {
        let height = self.height;
        let _ = writeln!(
            out,
            "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH_PX}\" height=\"{height:.0}\" viewBox=\"0 0 {WIDTH_PX} {height:.0}\" role=\"img\" aria-label=\"timeline\">"
        );
        self.axis(out);
        self.fault_bars(out);
        for node in &self.candidates {
            self.lane(node, out);
        }
        self.phases(out);
        self.violation_bands(out);
        out.push_str("</svg>\n");
    }

    /// A tick line and a label every round number of seconds.
    fn axis(&self, out: &mut String) {
        let axis_y = 18.0;
        let height = self.height;
        out.push_str("<g class=\"axis\">\n");
        let end_ms = self.scale.end_ms;
        let step = tick_step_ms(end_ms);
        let mut t = 0;
        while t <= end_ms {
            let x = self.scale.x(t);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{axis_y}\" x2=\"{x:.1}\" y2=\"{height:.0}\"/><text x=\"{x:.1}\" y=\"12\" text-anchor=\"middle\">{}</text>",
                seconds(t)
            );
            t += step;
        }
        out.push_str("</g>\n");
    }

    /// A bar per fault, labelled where the label fits.
    fn fault_bars(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "<g id=\"faults\"><text x=\"4\" y=\"{:.1}\" class=\"lane-label\">faults</text>",
            self.faults_y + 10.0
        );
        for (span, row) in self.faults.iter().zip(&self.rows) {
            let x0 = self.scale.x(span.start_ms);
            let width = (self.scale.x(span.end_ms) - x0).max(2.0);
            let y = self.faults_y + FAULT_ROW_PX * *row as f64;
            let _ = writeln!(
                out,
                "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" data-start-ms=\"{}\" data-end-ms=\"{}\"><title>{} (t={}..{} ms)</title></rect>",
                FAULT_ROW_PX - 2.0,
                span.start_ms,
                span.end_ms,
                esc(&span.text),
                span.start_ms,
                span.end_ms
            );
            // A label where it fits (about 6 px a character at this size).
            let label = short(&span.text);
            let fits = (width / 6.0) as usize;
            if fits >= 6 {
                let text: String = if label.chars().count() <= fits {
                    label.to_owned()
                } else {
                    label
                        .chars()
                        .take(fits.saturating_sub(1))
                        .collect::<String>()
                        + "\u{2026}"
                };
                let _ = writeln!(
                    out,
                    "<text class=\"fault-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x0 + 2.0,
                    y + FAULT_ROW_PX - 4.0,
                    esc(&text)
                );
            }
        }
        out.push_str("</g>\n");
    }

    /// One candidate's lane: the faults that name it shaded, when the lock named it, when it
    /// believed it led, and a marker per event of its own.
    fn lane(&self, node: &str, out: &mut String) {
        let y = self.lane_y(node).expect("a candidate has a lane");
        let _ = writeln!(
            out,
            "<g id=\"{}\" class=\"lane\" data-node=\"{}\">",
            lane_id(node),
            esc(node)
        );
        let _ = writeln!(
            out,
            "<rect class=\"lane-bg\" x=\"{LABEL_PX}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/><text class=\"lane-label\" x=\"4\" y=\"{:.1}\">{}</text><text x=\"4\" y=\"{:.1}\">lock / believed</text>",
            WIDTH_PX - LABEL_PX - RIGHT_PX,
            LANE_PX - 4.0,
            y + 16.0,
            esc(node),
            y + 30.0
        );
        for span in self.faults.iter().filter(|s| s.fault.touches(node)) {
            let x0 = self.scale.x(span.start_ms);
            let width = (self.scale.x(span.end_ms) - x0).max(2.0);
            let _ = writeln!(
                out,
                "<rect class=\"fault-shade\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                LANE_PX - 4.0,
                esc(&span.text)
            );
        }
        self.lock_bars(node, y, out);
        self.belief_bars(node, y, out);
        for entry in self.run.history.iter().filter(|e| e.node == node) {
            if let Some(marker) = marker(entry, self.scale.x(entry.t_ms), y) {
                out.push_str(&marker);
                out.push('\n');
            }
        }
        out.push_str("</g>\n");
    }

    /// The lock: from each change naming `node` to the next change.
    fn lock_bars(&self, node: &str, y: f64, out: &mut String) {
        for (position, change) in self.locks.iter().enumerate() {
            if change.holder != node {
                continue;
            }
            let until = self
                .locks
                .get(position + 1)
                .map_or(self.scale.end_ms, |next| next.t_ms);
            let x0 = self.scale.x(change.t_ms);
            let width = (self.scale.x(until) - x0).max(1.5);
            let _ = writeln!(
                out,
                "<rect class=\"lock\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"12\" data-term=\"{}\"><title>lock names {} at term {} (revision {}), t={}..{} ms</title></rect>",
                y + 4.0,
                change.term,
                esc(node),
                change.term,
                change.revision,
                change.t_ms,
                until
            );
        }
    }

    /// When `node` believed it led.
    fn belief_bars(&self, node: &str, y: f64, out: &mut String) {
        for leadership in self.leaderships.iter().filter(|l| l.node == node) {
            let x0 = self.scale.x(leadership.start_ms);
            let width = (self.scale.x(leadership.end_ms) - x0).max(1.5);
            let ended = if leadership.open {
                "still leading at the end"
            } else {
                "ended"
            };
            let _ = writeln!(
                out,
                "<rect class=\"belief\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"12\" data-term=\"{}\"><title>believed it led at term {}, t={}..{} ms ({ended})</title></rect>",
                y + 20.0,
                leadership.term,
                leadership.term,
                leadership.start_ms,
                leadership.end_ms
            );
        }
    }

    /// A dashed line and a label at every phase change.
    fn phases(&self, out: &mut String) {
        let (faults_y, height) = (self.faults_y, self.height);
        for entry in &self.run.history {
            if let Record::Harness(HarnessEvent::Phase { phase }) = &entry.record {
                let x = self.scale.x(entry.t_ms);
                // Labels right of their line, or left of it at the right edge.
                let (label_x, anchor) = if x > WIDTH_PX - RIGHT_PX - 60.0 {
                    (x - 3.0, "end")
                } else {
                    (x + 3.0, "start")
                };
                let _ = writeln!(
                    out,
                    "<g class=\"phase\" data-phase=\"{}\"><line x1=\"{x:.1}\" y1=\"{faults_y:.1}\" x2=\"{x:.1}\" y2=\"{height:.0}\"/><text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text></g>",
                    phase,
                    height - 2.0,
                    phase
                );
            }
        }
    }

    /// Violations: a band over every lane from the first to the last entry each names, and a
    /// marker at each entry in its candidate's lane.
    fn violation_bands(&self, out: &mut String) {
        let history = &self.run.history;
        let (faults_y, height) = (self.faults_y, self.height);
        let mut number = 0;
        for verdict in &self.run.verdicts {
            for violation in &verdict.violations {
                number += 1;
                let mut times: Vec<u64> = violation
                    .entries
                    .iter()
                    .filter_map(|i| history.get(*i).map(|e| e.t_ms))
                    .collect();
                // Times the message spells out (`from t=85 ms to t=11510 ms`) widen the band.
                times.extend(times_in(&violation.message).filter(|t| *t <= self.scale.end_ms));
                let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
                    continue;
                };
                let x0 = self.scale.x(*first) - 2.0;
                let width = (self.scale.x(*last) - self.scale.x(*first)).max(0.0) + 4.0;
                let _ = writeln!(
                    out,
                    "<g class=\"violation\" id=\"violation-{number}\" data-checker=\"{}\"><rect class=\"violation\" x=\"{x0:.1}\" y=\"{faults_y:.1}\" width=\"{width:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
                    verdict.checker,
                    height - faults_y,
                    verdict.checker,
                    esc(&violation.message)
                );
                for index in &violation.entries {
                    let Some(entry) = history.get(*index) else {
                        continue;
                    };
                    if let Some(y) = self.lane_y(&entry.node) {
                        let x = self.scale.x(entry.t_ms);
                        let _ = writeln!(
                            out,
                            "<path class=\"violation-marker\" d=\"M{:.1} {:.1} l10 0 l-5 8 z\"><title>line {}: {}</title></path>",
                            x - 5.0,
                            y,
                            index + 1,
                            esc(&entry.to_line())
                        );
                    }
                }
                out.push_str("</g>\n");
            }
        }
    }
}

/// The marker of a candidate's own event at `x` in the lane at `y`, for the events drawn.
fn marker(entry: &Entry, x: f64, y: f64) -> Option<String> {
    let t = entry.t_ms;
    let (top, mid, bottom) = (y + 2.0, y + 26.0, y + 36.0);
    let marker = match &entry.record {
        Record::Job(Event::Checkpoint { id, records, term }) => format!(
            "<line class=\"checkpoint\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"><title>checkpoint {id} ({records} records, term {term}) at t={t} ms</title></line>",
            y + 18.0
        ),
        Record::Job(Event::Restored {
            checkpoint,
            records,
            term,
            ..
        }) => format!(
            "<path class=\"restore\" d=\"M{x:.1} {:.1} l5 5 l-5 5 l-5 -5 z\"><title>restored checkpoint {} ({records} records, term {term}) at t={t} ms</title></path>",
            mid - 5.0,
            show_checkpoint(*checkpoint)
        ),
        Record::Job(Event::Failover { term, error }) => format!(
            "<circle class=\"job-failover\" cx=\"{x:.1}\" cy=\"{mid:.1}\" r=\"3.5\"><title>job failover (term {term}) at t={t} ms: {}</title></circle>",
            esc(error)
        ),
        Record::Job(Event::Fenced { term, error }) => format!(
            "<circle class=\"fenced\" cx=\"{x:.1}\" cy=\"{mid:.1}\" r=\"4\"><title>fenced (term {term}) at t={t} ms: {}</title></circle>",
            esc(error)
        ),
        Record::Harness(HarnessEvent::Crashed {}) => format!(
            "<path class=\"crash\" d=\"M{:.1} {top:.1} l10 10 m0 -10 l-10 10\"><title>crashed at t={t} ms</title></path>",
            x - 5.0
        ),
        Record::Harness(HarnessEvent::Stopped { graceful }) => format!(
            "<rect class=\"stop\" x=\"{:.1}\" y=\"{top:.1}\" width=\"8\" height=\"8\"><title>stopped{} at t={t} ms</title></rect>",
            x - 4.0,
            if *graceful { "" } else { " (not gracefully)" }
        ),
        Record::Harness(HarnessEvent::Started {}) => format!(
            "<path class=\"start\" d=\"M{x:.1} {top:.1} l8 4 l-8 4 z\"><title>started at t={t} ms</title></path>"
        ),
        _ => return None,
    };
    Some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::testing::*;

    #[test]
    fn the_html_page_has_lanes_bars_faults_and_violations_and_fetches_nothing() {
        let page = judged().timeline_html();
        for id in [
            "lane-node-a",
            "lane-node-b",
            "lane-node-c",
            "violation-1",
            "violation-2",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id} missing");
        }
        assert!(!page.contains("lane-observer-a"), "observers have no lane");
        for class in [
            "belief",
            "lock",
            "fault",
            "fault-shade",
            "checkpoint",
            "restore",
            "crash",
        ] {
            assert!(
                page.contains(&format!("class=\"{class}\"")),
                "{class} missing"
            );
        }
        assert!(page.contains("partition node-a &lt;-&gt; apiserver &amp; &lt;blob&gt;"));
        assert!(page.contains(
            "<span id=\"verdict\" class=\"badge violated\">VIOLATED terms, overlap</span>"
        ));
        assert!(
            page.contains("<code id=\"replay\">khaos sim run --scenario hand-made --seed 7</code>")
        );
        for forbidden in ["<script", "src=", "<link", "@import", "url("] {
            assert!(!page.contains(forbidden), "{forbidden} in the page");
        }
        // The only links are to anchors within the page.
        for (position, _) in page.match_indices("href=\"") {
            assert!(
                page[position + 6..].starts_with('#'),
                "{}",
                &page[position..position + 40]
            );
        }
    }

    #[test]
    fn times_in_messages_widen_violation_bands() {
        let message = "a and b both believed they led for 90 ms, from t=2310 ms to t=2400 ms";
        assert_eq!(times_in(message).collect::<Vec<_>>(), [2310, 2400]);
        assert_eq!(times_in("t=12 s, t=x ms, at=5 ms").count(), 0);
    }

    #[test]
    fn lane_ids_keep_names_readable_and_safe() {
        assert_eq!(lane_id("node-a"), "lane-node-a");
        assert_eq!(lane_id("pod a/\"x\""), "lane-pod_a__x_");
    }
}
