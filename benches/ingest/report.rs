//! The tables printed at the end, what their columns mean, and the figures
//! beside the aims of issue 10.

use std::fmt::Write as _;

use crate::procfs::Cores;
use crate::scenario::{GatewayClocks, Outcome, Scenario};

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

/// The bare server's POSTs/s in the same run: what every ratio divides by.
fn bare_rate(outcomes: &[Outcome], run: usize) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.scenario == Scenario::Bare && o.run == run)
        .map(|o| o.load.ok_per_sec())
}

/// `rate` as a multiple of the bare server's, e.g. `0.31×`; `-` without one.
fn ratio(rate: f64, bare: Option<f64>) -> String {
    match bare {
        Some(b) if b > 0.0 => format!("{:.2}×", rate / b),
        _ => "-".into(),
    }
}

/// `server (writer) / generator / bench proc / machine`; no writer for the bare server.
fn cores(scenario: Scenario, c: &Cores) -> String {
    let writer = if scenario == Scenario::Bare {
        format!("{:>4}", "-")
    } else {
        format!("{:>4.2}", c.writer)
    };
    format!(
        "{:>6.2} ({writer}) / {:>6.2} / {:>6.2} / {:>6.2}",
        c.server, c.generator, c.bench, c.machine
    )
}

/// The bare server and every scenario with a load phase to compare with it.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario       | run | conns |  200s  | err | ingests/s | × bare |  events/s | ingest p50 / p99 / max ms | e2e p50 / p99 ms | deliveries/s | × bare | backlog@end | dup | idle / peak RSS MiB | commits / > 5 ms / > 100 ms | 200s > 5 ms at the gateway | CPU cores: server (writer) / generator / bench proc / machine |"
    );
    let _ = writeln!(
        out,
        "|----------------|-----|-------|--------|-----|-----------|--------|-----------|---------------------------|------------------|--------------|--------|-------------|-----|---------------------|-----------------------------|----------------------------|---------------------------------------------------------------|"
    );
    for o in outcomes.iter().filter(|o| o.drain.is_none()) {
        let l = &o.load;
        let bare = bare_rate(outcomes, o.run);
        let (e2e, dps, dps_ratio, backlog, dup) = match &o.deliveries {
            Some(d) => (
                format!(
                    "{:>7.1} / {:>6.1}",
                    percentile(&d.e2e_us, 0.50),
                    percentile(&d.e2e_us, 0.99)
                ),
                format!("{:>12.0}", d.per_sec()),
                ratio(d.per_sec(), bare),
                format!("{:>11}", l.ok.saturating_sub(d.during_load)),
                format!("{:>3}", d.duplicates),
            ),
            None => (
                format!("{:>16}", "-"),
                format!("{:>12}", "-"),
                "-".into(),
                format!("{:>11}", "-"),
                format!("{:>3}", "-"),
            ),
        };
        let ingest_ratio = if o.scenario == Scenario::Bare {
            "ref".into()
        } else {
            ratio(l.ok_per_sec(), bare)
        };
        let _ = writeln!(
            out,
            "| {:<14} | {:>3} | {:>5} | {:>6} | {:>3} | {:>9.0} | {:>6} | {:>9.0} | {:>7.2} / {:>6.2} / {:>6.1} | {} | {} | {:>6} | {} | {} | {:>7.1} / {:>9.1} | {} | {} |",
            o.scenario.name(),
            o.run,
            o.connections,
            l.ok,
            l.errors,
            l.ok_per_sec(),
            ingest_ratio,
            l.events as f64 / l.secs,
            percentile(&l.latencies_us, 0.50),
            percentile(&l.latencies_us, 0.99),
            max_ms(&l.latencies_us),
            e2e,
            dps,
            dps_ratio,
            backlog,
            dup,
            o.idle_rss_mib,
            o.peak_rss_mib,
            clocks(o.clocks),
            cores(o.scenario, &o.cores),
        );
    }
    out
}

/// `commits / over 5 ms / over 100 ms | answers over 5 ms`; `-` for the bare server.
fn clocks(c: Option<GatewayClocks>) -> String {
    match c {
        Some(c) => format!(
            "{:>7} / {:>6} / {:>8} | {:>24.2} %",
            c.commits,
            c.over_5ms,
            c.over_100ms,
            c.answered_over_5ms_pct()
        ),
        None => format!("{:>27} | {:>26}", "-", "-"),
    }
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

/// The outbox scenario: its fill (ingest while deliveries are held) and its drain.
pub fn outbox_table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| run | queued | fill ingests/s | × bare | held | drain s | deliveries/s | × bare | dup | idle / at release / peak RSS MiB | drain CPU cores: gateway (writer) / receiver / machine |"
    );
    let _ = writeln!(
        out,
        "|-----|--------|----------------|--------|------|---------|--------------|--------|-----|----------------------------------|--------------------------------------------------------|"
    );
    for o in outcomes {
        let Some(d) = &o.drain else { continue };
        let bare = bare_rate(outcomes, o.run);
        let _ = writeln!(
            out,
            "| {:>3} | {:>6} | {:>14.0} | {:>6} | {:>4} | {:>7.1} | {:>12.0} | {:>6} | {:>3} | {:>6.1} / {:>10.1} / {:>10.1} | {:>26.2} ({:>4.2}) / {:>8.2} / {:>7.2} |",
            o.run,
            d.queued,
            o.load.ok_per_sec(),
            ratio(o.load.ok_per_sec(), bare),
            d.held,
            d.secs,
            d.per_sec(),
            ratio(d.per_sec(), bare),
            d.duplicates,
            o.idle_rss_mib,
            d.rss_at_release_mib,
            o.peak_rss_mib,
            d.cores.server,
            d.cores.writer,
            d.receiver_cores,
            d.cores.machine,
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
            || o.drain.as_ref().is_some_and(|d| d.delivered < d.queued)
    })
}

/// One line per aim of issue 10 that this run measured: the figure of every
/// run, and whether all of them meet it.
pub fn aims(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let mut aim = |what: &str, figures: Vec<(String, bool)>| {
        if figures.is_empty() {
            return;
        }
        let met = figures.iter().all(|(_, ok)| *ok);
        let shown: Vec<String> = figures.into_iter().map(|(f, _)| f).collect();
        let _ = writeln!(
            out,
            "  {} {what}: {}",
            if met { "[met]    " } else { "[not met]" },
            shown.join(", ")
        );
    };
    let ratio_of = |o: &Outcome, rate: f64| bare_rate(outcomes, o.run).map(|b| rate / b);
    let of = |s: Scenario| outcomes.iter().filter(move |o| o.scenario == s);

    aim(
        "ingest only ≥ 0.40× bare",
        of(Scenario::Ingest)
            .filter_map(|o| ratio_of(o, o.load.ok_per_sec()))
            .map(|r| (format!("{r:.2}×"), r >= 0.40))
            .collect(),
    );
    aim(
        "ingest+deliver ≥ 0.25× bare, deliveries keeping up",
        of(Scenario::Deliver)
            .filter_map(|o| {
                let d = o.deliveries.as_ref()?;
                let r = ratio_of(o, o.load.ok_per_sec())?;
                let backlog = o.load.ok.saturating_sub(d.during_load);
                // Over the load's own time, as its ingests/s are: the
                // deliveries/s column runs to the last delivery, so one late
                // straggler would count against a rate that kept up.
                let during = d.during_load as f64 / o.load.secs;
                let keeps_up = during >= o.load.ok_per_sec() * 0.99;
                Some((
                    format!(
                        "{r:.2}× with {during:.0} deliveries/s during the load, backlog {backlog}"
                    ),
                    r >= 0.25 && keeps_up,
                ))
            })
            .collect(),
    );
    aim(
        "paced at 5,000/s with a listener: ingest p99 ≤ 5 ms, e2e p99 ≤ 20 ms",
        outcomes
            .iter()
            .filter(|o| o.rate == 5_000.0)
            .filter_map(|o| {
                let d = o.deliveries.as_ref()?;
                let (ingest, e2e) = (
                    percentile(&o.load.latencies_us, 0.99),
                    percentile(&d.e2e_us, 0.99),
                );
                // The disk's share of the tail: commits that alone kept
                // their answers waiting past the aim.
                // And the gateway's own clock: the share of its answers
                // over 5 ms, which leaves out the load generator's waits.
                let (slow, own) = o
                    .clocks
                    .map_or((0, 0.0), |c| (c.over_5ms, c.answered_over_5ms_pct()));
                Some((
                    format!(
                        "{ingest:.1} / {e2e:.1} ms ({}; {slow} commits over 5 ms; {own:.2} % of the gateway's 200s over 5 ms)",
                        o.scenario.name()
                    ),
                    ingest <= 5.0 && e2e <= 20.0,
                ))
            })
            .collect(),
    );
    aim(
        "≥ 15,000 deliveries/s from a full outbox",
        outcomes
            .iter()
            .filter_map(|o| o.drain.as_ref())
            .map(|d| (format!("{:.0}/s", d.per_sec()), d.per_sec() >= 15_000.0))
            .collect(),
    );
    let gateway = || outcomes.iter().filter(|o| o.scenario != Scenario::Bare);
    aim(
        "idle RSS ≤ 20 MiB",
        gateway()
            .map(|o| (format!("{:.1}", o.idle_rss_mib), o.idle_rss_mib <= 20.0))
            .collect(),
    );
    aim(
        "peak RSS ≤ 64 MiB under load",
        gateway()
            .map(|o| {
                (
                    format!("{:.1} ({})", o.peak_rss_mib, o.scenario.name()),
                    o.peak_rss_mib <= 64.0,
                )
            })
            .collect(),
    );
    out
}
