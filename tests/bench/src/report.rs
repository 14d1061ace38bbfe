//! Figures, percentiles, and the two outputs: a table for people and JSON for machines.

use std::time::Duration;

use serde_json::{Value, json};

/// A bound from issue 7 that a figure should meet.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Below(f64),
    AtLeast(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::Below(limit) => value < limit,
            Target::AtLeast(limit) => value >= limit,
        }
    }

    fn text(self) -> String {
        match self {
            Target::Below(limit) => format!("< {limit}"),
            Target::AtLeast(limit) => format!(">= {limit}"),
        }
    }
}

/// One measured value of one benchmark case.
#[derive(Debug, Clone)]
pub struct Figure {
    pub bench: String,
    pub case: String,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
}

/// The figures of a run, in the order they were measured.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
}

impl Report {
    /// Adds a figure without a target.
    pub fn add(&mut self, bench: &str, case: &str, name: &str, value: f64, unit: &'static str) {
        self.add_with(bench, case, name, value, unit, None);
    }

    /// Adds a figure with an optional target.
    pub fn add_with(
        &mut self,
        bench: &str,
        case: &str,
        name: &str,
        value: f64,
        unit: &'static str,
        target: Option<Target>,
    ) {
        let figure = Figure {
            bench: bench.into(),
            case: case.into(),
            name: name.into(),
            value,
            unit,
            target,
        };
        eprintln!(
            "  {} {}: {}",
            figure.case,
            figure.name,
            show(figure.value, figure.unit)
        );
        self.figures.push(figure);
    }

    /// p50, p99 and max of latencies in milliseconds, p99 against `p99_target`.
    pub fn latencies(
        &mut self,
        bench: &str,
        case: &str,
        what: &str,
        samples: &mut [Duration],
        p99_target: Option<f64>,
    ) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.add(
            bench,
            case,
            &format!("{what} p50"),
            ms(percentile(samples, 0.50)),
            "ms",
        );
        let p99 = ms(percentile(samples, 0.99));
        self.add_with(
            bench,
            case,
            &format!("{what} p99"),
            p99,
            "ms",
            p99_target.map(Target::Below),
        );
        self.add(
            bench,
            case,
            &format!("{what} max"),
            ms(percentile(samples, 1.0)),
            "ms",
        );
    }

    /// The table for stdout.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .figures
            .iter()
            .map(|f| {
                let verdict = match f.target {
                    Some(t) if t.met(f.value) => format!("{} met", t.text()),
                    Some(t) => format!("{} MISSED", t.text()),
                    None => String::new(),
                };
                [
                    f.bench.clone(),
                    f.case.clone(),
                    f.name.clone(),
                    show(f.value, f.unit),
                    verdict,
                ]
            })
            .collect();
        let header = ["benchmark", "case", "figure", "value", "target"].map(String::from);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 5]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&header);
        out += &line(&widths.map(|w| "-".repeat(w)));
        for row in &rows {
            out += &line(row);
        }
        out
    }

    /// The JSON document: when, where, and every figure.
    pub fn json(&self, args: &[String]) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "benchmark": f.bench, "case": f.case, "figure": f.name,
                    "value": f.value, "unit": f.unit,
                    "target": f.target.map(Target::text),
                    "met": f.target.map(|t| t.met(f.value)),
                })
            })
            .collect();
        json!({
            "measured_at": chrono::Utc::now().to_rfc3339(),
            "command": args,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
            "figures": figures,
        })
    }
}

fn show(value: f64, unit: &str) -> String {
    if unit == "cores" {
        format!("{value:.2} {unit}")
    } else if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// The `q` quantile (nearest rank) of `samples`, sorting them; zero when empty.
pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut s, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&mut s, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut s, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&mut [], 0.99), Duration::ZERO);
    }
}
