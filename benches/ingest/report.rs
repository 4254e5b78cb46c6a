//! The tables printed at the end, and what their columns mean.

use std::fmt::Write as _;

use crate::scenario::Outcome;

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn max_ms(sorted: &[u32]) -> f64 {
    sorted.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
}

pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario       | run | conns |  200s  | err | ingests/s |  events/s | ingest p50 / p99 / max ms | e2e p50 / p99 ms | deliveries/s | backlog@end | dup | peak RSS MiB | CPU cores: gateway (writer) / generator / bench proc / machine |"
    );
    let _ = writeln!(
        out,
        "|----------------|-----|-------|--------|-----|-----------|-----------|---------------------------|------------------|--------------|-------------|-----|--------------|----------------------------------------------------------------|"
    );
    for o in outcomes {
        let l = &o.load;
        let (e2e, dps, backlog, dup) = match &o.deliveries {
            Some(d) => (
                format!(
                    "{:>7.1} / {:>6.1}",
                    percentile(&d.e2e_us, 0.50),
                    percentile(&d.e2e_us, 0.99)
                ),
                format!("{:>12.0}", d.per_sec()),
                format!("{:>11}", l.ok.saturating_sub(d.during_load)),
                format!("{:>3}", d.duplicates),
            ),
            None => (
                format!("{:>16}", "-"),
                format!("{:>12}", "-"),
                format!("{:>11}", "-"),
                format!("{:>3}", "-"),
            ),
        };
        let c = &o.cores;
        let _ = writeln!(
            out,
            "| {:<14} | {:>3} | {:>5} | {:>6} | {:>3} | {:>9.0} | {:>9.0} | {:>7.2} / {:>6.2} / {:>6.1} | {} | {} | {} | {} | {:>12.1} | {:>6.2} ({:>4.2}) / {:>6.2} / {:>6.2} / {:>6.2} |",
            o.scenario.name(),
            o.run,
            o.connections,
            l.ok,
            l.errors,
            l.ok_per_sec(),
            l.events as f64 / l.secs,
            percentile(&l.latencies_us, 0.50),
            percentile(&l.latencies_us, 0.99),
            max_ms(&l.latencies_us),
            e2e,
            dps,
            backlog,
            dup,
            o.peak_rss_mib,
            c.server,
            c.writer,
            c.generator,
            c.bench,
            c.machine,
        );
    }
    out
}

pub fn calls_table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| run | ordinary POSTs/s | ordinary deliveries/s | ordinary e2e p50 / p99 ms | calls sent | err | delivered | dup | call e2e p50 / p99 / max ms |"
    );
    let _ = writeln!(
        out,
        "|-----|------------------|-----------------------|---------------------------|------------|-----|-----------|-----|-----------------------------|"
    );
    for o in outcomes {
        let (Some(c), Some(d)) = (&o.calls, &o.deliveries) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {:>3} | {:>16.0} | {:>21.0} | {:>12.1} / {:>10.1} | {:>10} | {:>3} | {:>9} | {:>3} | {:>8.1} / {:>6.1} / {:>7.1} |",
            o.run,
            o.load.ok_per_sec(),
            d.per_sec(),
            percentile(&d.e2e_us, 0.50),
            percentile(&d.e2e_us, 0.99),
            c.sent,
            c.errors,
            c.e2e.len(),
            c.duplicates,
            percentile(&c.e2e, 0.50),
            percentile(&c.e2e, 0.99),
            max_ms(&c.e2e),
        );
    }
    out
}

/// Whether some POST failed or some delivery did not arrive in time.
pub fn shortfall(outcomes: &[Outcome]) -> bool {
    outcomes.iter().any(|o| {
        o.load.errors > 0
            || o.deliveries
                .as_ref()
                .is_some_and(|d| d.delivered < o.load.ok)
            || o.calls
                .as_ref()
                .is_some_and(|c| c.errors > 0 || (c.e2e.len() as u64) < c.sent)
    })
}
