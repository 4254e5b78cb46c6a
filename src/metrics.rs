//! Counters exposed at `/metrics` in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        #[derive(Default)]
        pub struct Metrics {
            $(pub $name: AtomicU64,)*
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

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
