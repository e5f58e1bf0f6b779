//! Latency histograms and the summaries every scenario reports.
//!
//! Latencies are recorded in microseconds into HDR histograms (3
//! significant digits), so percentiles stay exact to 0.1% whatever the
//! spread, and per-task histograms merge without keeping every sample.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency recorder.
#[derive(Clone)]
pub struct Recorder {
    hist: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: Histogram::new(3).expect("3 significant digits is valid"),
        }
    }
}

impl Recorder {
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().max(1) as u64;
        self.hist.record(us).expect("auto-resizing histogram");
    }

    /// Adds another recorder's samples.
    pub fn merge(&mut self, other: &Recorder) {
        self.hist.add(&other.hist).expect("auto-resizing histogram");
    }

    /// The percentiles of what was recorded, in milliseconds.
    pub fn latency(&self) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.hist.is_empty() {
            return Latency::default();
        }
        Latency {
            samples: self.hist.len(),
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.50)),
            p90_ms: ms(self.hist.value_at_quantile(0.90)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
            min_ms: ms(self.hist.min()),
        }
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// How many samples these come from.
    pub samples: u64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latency {
    /// `p50 / p99 / max` as a compact cell.
    pub fn cell(&self) -> String {
        if self.samples == 0 {
            return "-".into();
        }
        format!(
            "{} / {} / {}",
            fmt_ms(self.p50_ms),
            fmt_ms(self.p99_ms),
            fmt_ms(self.max_ms)
        )
    }
}

/// Milliseconds with as many decimals as are meaningful.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Counts the refusals of a phase, keeping the first text of each kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Errors {
    /// Total failed requests.
    pub count: u64,
    /// Up to 5 distinct error texts, with how often each occurred.
    pub samples: Vec<(String, u64)>,
}

impl Errors {
    /// Records one failure.
    pub fn add(&mut self, text: String) {
        self.count += 1;
        // Texts that differ only in ids are still one kind of error.
        let key: String = text.chars().take(60).collect();
        if let Some(e) = self.samples.iter_mut().find(|(t, _)| t.starts_with(&key)) {
            e.1 += 1;
        } else if self.samples.len() < 5 {
            self.samples.push((text, 1));
        }
    }

    /// Adds another phase's failures.
    pub fn merge(&mut self, other: &Errors) {
        for (t, n) in &other.samples {
            for _ in 0..*n {
                self.add(t.clone());
            }
        }
        let sampled: u64 = other.samples.iter().map(|(_, n)| n).sum();
        self.count += other.count - sampled;
    }
}

/// Renders rows as an aligned plain-text table (also valid Markdown).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    // A row with more cells than the header gets blank headings rather
    // than losing data.
    let n = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths = vec![0usize; n];
    for r in rows.iter().chain(std::iter::once(&head)) {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |mut cells: Vec<String>| {
        cells.resize(n, String::new());
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            s.push(' ');
            s.push_str(c);
            s.push_str(&" ".repeat(pad));
            s.push_str(" |");
        }
        s.push('\n');
        s
    };
    let mut out = line(head.clone());
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_merge() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=50 {
            a.record(Duration::from_millis(i));
        }
        for i in 51..=100 {
            b.record(Duration::from_millis(i));
        }
        a.merge(&b);
        let l = a.latency();
        assert_eq!(l.samples, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
    }

    #[test]
    fn errors_are_grouped() {
        let mut e = Errors::default();
        e.add("replay detected: nonce already used".into());
        e.add("replay detected: nonce already used".into());
        e.add("stale".into());
        let mut f = Errors::default();
        f.merge(&e);
        assert_eq!(f.count, 3);
        assert_eq!(f.samples.len(), 2);
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "| a   | bb |\n| --- | -- |\n| xxx | y  |\n");
    }
}
