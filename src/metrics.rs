//! Counters exposed at `/metrics` in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        #[derive(Default)]
        pub struct Metrics {
            $(pub $name: AtomicU64,)*
            /// Signed webhooks answered 200, from their handler's start
            /// (the request head read) to their answer, the commit included.
            pub webhook_times: Histogram,
        }

        impl Metrics {
            /// Prometheus text exposition of every counter.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP wabridge_{} {}", stringify!($name), $help);
                    let _ = writeln!(out, "# TYPE wabridge_{} counter", stringify!($name));
                    let _ = writeln!(out, "wabridge_{} {}", stringify!($name), self.$name.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

counters! {
    webhooks_received_total: "Webhook POSTs from Meta, signed or not.",
    webhook_signature_failures_total: "Webhook POSTs refused for a missing or wrong X-Hub-Signature-256.",
    events_accepted_total: "Message and status events stored for the first time.",
    events_duplicate_total: "Events Meta redelivered that were already stored.",
    webhooks_quarantined_total: "Signed webhook bodies that could not be used.",
    delivery_attempts_total: "Attempts to POST an event to a flow webhook.",
    delivery_attempts_not_sent_total: "Attempts not made, and counted failed, while their receiver kept its last attempts waiting without taking them.",
    deliveries_succeeded_total: "Deliveries a flow webhook accepted with a 2xx.",
    deliveries_failed_total: "Deliveries given up after the last retry.",
    connections_shed_total: "Idle connections closed to make room for a new one at --max-connections.",
    connections_refused_total: "New connections refused because every open one was busy.",
    connections_idle_closed_total: "Connections closed for sending no request head within --header-timeout.",
    answers_stalled_total: "Connections closed because an answer was not taken for --body-timeout (the client stopped reading).",
    request_bodies_timed_out_total: "Requests answered 408 because the body did not arrive within --body-timeout.",
    requests_busy_total: "Requests answered 503 + Retry-After to protect the server: a body budget (--webhook-body-budget, forms) in use, or the password checks all taken.",
}

/// A value read from the store when scraped, with one sample per label value.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    /// (label name, label value) or none, and the value.
    pub samples: Vec<(Option<(&'static str, &'static str)>, u64)>,
}

impl Gauge {
    pub fn single(name: &'static str, help: &'static str, value: u64) -> Gauge {
        Gauge {
            name,
            help,
            samples: vec![(None, value)],
        }
    }
}

/// Prometheus text exposition of gauges, after the counters.
pub fn render_gauges(out: &mut String, gauges: &[Gauge]) {
    for g in gauges {
        let _ = writeln!(out, "# HELP wabridge_{} {}", g.name, g.help);
        let _ = writeln!(out, "# TYPE wabridge_{} gauge", g.name);
        for (label, value) in &g.samples {
            match label {
                Some((k, v)) => {
                    let _ = writeln!(out, "wabridge_{}{{{k}=\"{v}\"}} {value}", g.name);
                }
                None => {
                    let _ = writeln!(out, "wabridge_{} {value}", g.name);
                }
            }
        }
    }
}

/// Upper bounds of a [`Histogram`]'s buckets, in µs: from a commit that
/// kept up with a fast SSD to a disk that stalled for seconds.
const BOUNDS_US: [u64; 10] = [
    500, 1_000, 2_000, 5_000, 10_000, 25_000, 100_000, 250_000, 1_000_000, 5_000_000,
];

/// A Prometheus histogram of durations, with fixed buckets: an observation is
/// a few relaxed atomic adds, so a hot path can afford one.
#[derive(Default)]
pub struct Histogram {
    /// One count per bound, then one for what is longer than the last.
    counts: [AtomicU64; BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_US.partition_point(|&bound| bound < us);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Renders `wabridge_<name>` in seconds, with cumulative buckets.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP wabridge_{name} {help}");
        let _ = writeln!(out, "# TYPE wabridge_{name} histogram");
        let mut total = 0;
        for (i, count) in self.counts.iter().enumerate() {
            total += count.load(Ordering::Relaxed);
            let le = BOUNDS_US
                .get(i)
                .map_or("+Inf".to_string(), |&us| seconds(us));
            let _ = writeln!(out, "wabridge_{name}_bucket{{le=\"{le}\"}} {total}");
        }
        let sum = seconds(self.sum_us.load(Ordering::Relaxed));
        let _ = writeln!(out, "wabridge_{name}_sum {sum}");
        let _ = writeln!(out, "wabridge_{name}_count {total}");
    }
}

/// µs as seconds, exactly, in the shortest decimal form (`0.0005`, `1`).
fn seconds(us: u64) -> String {
    let frac = format!("{:06}", us % 1_000_000);
    let frac = frac.trim_end_matches('0');
    match frac {
        "" => format!("{}", us / 1_000_000),
        _ => format!("{}.{frac}", us / 1_000_000),
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(h: &Histogram) -> String {
        let mut out = String::new();
        h.render(&mut out, "t_seconds", "Test.");
        out
    }

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_and_every_one_above() {
        let h = Histogram::default();
        for us in [300, 500, 501, 7_000, 6_000_000] {
            h.observe(Duration::from_micros(us));
        }
        let out = rendered(&h);
        for line in [
            "# TYPE wabridge_t_seconds histogram",
            "wabridge_t_seconds_bucket{le=\"0.0005\"} 2",
            "wabridge_t_seconds_bucket{le=\"0.001\"} 3",
            "wabridge_t_seconds_bucket{le=\"0.005\"} 3",
            "wabridge_t_seconds_bucket{le=\"0.01\"} 4",
            "wabridge_t_seconds_bucket{le=\"5\"} 4",
            "wabridge_t_seconds_bucket{le=\"+Inf\"} 5",
            "wabridge_t_seconds_sum 6.008301",
            "wabridge_t_seconds_count 5",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
        }
    }

    #[test]
    fn an_empty_histogram_has_every_bucket_at_zero() {
        let out = rendered(&Histogram::default());
        assert_eq!(out.lines().filter(|l| l.contains("_bucket{")).count(), 11);
        assert!(
            out.lines().all(|l| l.starts_with('#') || l.ends_with(" 0")),
            "{out}"
        );
    }

    #[test]
    fn seconds_are_written_exactly_without_trailing_zeros() {
        assert_eq!(seconds(500), "0.0005");
        assert_eq!(seconds(25_000), "0.025");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(6_008_301), "6.008301");
        assert_eq!(seconds(0), "0");
    }
}
