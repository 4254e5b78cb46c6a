//! Traffic per minute over the last 24 hours, for the backoffice's charts:
//! Meta's webhook POSTs (received, refused), events by type, and each
//! listener's delivery attempts (delivered, failed).
//!
//! Counting happens where the gateway already knows what happened (the
//! webhook's answer, ingest's commit, a delivery's outcome) and touches only
//! memory: one short lock on a ring of 1,440 minutes. A background task
//! writes the minutes that changed about once a minute, so the hot paths gain
//! no commit, and a restart reloads the last 24 hours.
//!
//! Memory is bounded: each group holds a fixed number of series; a new one
//! takes the place of one that was quiet all day, and past that, new event
//! types are merged into "other" and new listeners go uncounted.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

pub const MINUTE_MS: u64 = 60_000;
/// Minutes in the window the charts show: 24 hours.
pub const WINDOW: u64 = 1_440;
/// Event types counted apart; the rest are merged into [`OTHER`].
const EVENT_TYPES: usize = 32;
/// Listeners counted; past this, new listeners go uncounted until one is quiet
/// for a day (one listener costs 11.5 KiB).
const LISTENERS: usize = 128;
/// The series of event types beyond [`EVENT_TYPES`], and of the types a chart
/// does not show on their own.
pub const OTHER: &str = "other";

/// Two counts per minute: (received, refused) for webhooks, (events, –) for
/// an event type, (delivered, failed) for a listener.
pub type Pair = [u32; 2];

pub fn minute_of(ms: u64) -> u64 {
    ms / MINUTE_MS
}

/// What a series counts; its name in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Meta's webhook POSTs (one series, named ""): received, refused.
    Webhooks,
    /// Events stored for the first time, one series per type.
    Events,
    /// Delivery attempts, one series per listener id: delivered, failed.
    Deliveries,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhooks => "webhooks",
            Kind::Events => "events",
            Kind::Deliveries => "deliveries",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Webhooks, Kind::Events, Kind::Deliveries]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One stored minute of one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub minute: u64,
    pub kind: Kind,
    pub name: String,
    pub counts: Pair,
}

/// The counts of the last [`WINDOW`] minutes of one series, each minute in
/// slot `minute % WINDOW`.
#[derive(Clone)]
struct Ring {
    /// The latest minute the ring has moved to; slots of earlier minutes
    /// within the window are valid, the rest are zero.
    newest: u64,
    slots: Box<[Pair]>,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            newest: 0,
            slots: vec![[0; 2]; WINDOW as usize].into_boxed_slice(),
        }
    }

    /// Moves to `minute`, clearing the slots of the minutes passed over.
    fn advance(&mut self, minute: u64) {
        if minute <= self.newest {
            return;
        }
        let gap = (minute - self.newest).min(WINDOW);
        for m in minute + 1 - gap..=minute {
            self.slots[(m % WINDOW) as usize] = [0; 2];
        }
        self.newest = minute;
    }

    fn add(&mut self, minute: u64, counts: Pair) {
        if minute + WINDOW <= self.newest {
            return;
        }
        self.advance(minute);
        let slot = &mut self.slots[(minute % WINDOW) as usize];
        for (s, n) in slot.iter_mut().zip(counts) {
            *s = s.saturating_add(n);
        }
    }

    fn at(&self, minute: u64) -> Pair {
        if minute > self.newest || minute + WINDOW <= self.newest {
            return [0; 2];
        }
        self.slots[(minute % WINDOW) as usize]
    }

    /// The window that ends with minute `now`, oldest minute first.
    fn window(&self, now: u64) -> Vec<Pair> {
        ((now + 1).saturating_sub(WINDOW)..=now)
            .map(|m| self.at(m))
            .collect()
    }

    /// Nothing counted in the window that ends with minute `now`: every
    /// count moves `newest`, so no slot needs reading (this runs under the
    /// group's lock, on the ingest and delivery paths).
    fn quiet(&self, now: u64) -> bool {
        self.newest + WINDOW <= now
    }
}

/// The series of one kind, at most `cap` of them.
struct Group {
    series: HashMap<String, Ring>,
    cap: usize,
    /// Where counts for a series beyond the cap go: merged into this one
    /// (which does not count against the cap), or dropped.
    overflow: Option<&'static str>,
}

impl Group {
    fn new(cap: usize, overflow: Option<&'static str>) -> Group {
        Group {
            series: HashMap::new(),
            cap,
            overflow,
        }
    }

    /// The ring of `name`, made if there is room (or a quiet one to replace),
    /// else the overflow's ring, or none.
    fn ring(&mut self, name: &str, minute: u64) -> Option<&mut Ring> {
        if !self.series.contains_key(name) {
            let counted = self.series.len() - usize::from(self.overflow_present());
            if counted >= self.cap {
                let quiet = self
                    .series
                    .iter()
                    .find(|(n, r)| Some(n.as_str()) != self.overflow && r.quiet(minute))
                    .map(|(n, _)| n.clone());
                match (quiet, self.overflow) {
                    (Some(q), _) => {
                        self.series.remove(&q);
                    }
                    (None, Some(other)) => {
                        return Some(
                            self.series
                                .entry(other.to_string())
                                .or_insert_with(Ring::new),
                        )
                    }
                    (None, None) => return None,
                }
            }
            self.series.insert(name.to_string(), Ring::new());
        }
        self.series.get_mut(name)
    }

    fn overflow_present(&self) -> bool {
        self.overflow.is_some_and(|o| self.series.contains_key(o))
    }

    fn add(&mut self, name: &str, minute: u64, counts: Pair) {
        if let Some(ring) = self.ring(name, minute) {
            ring.add(minute, counts);
        }
    }
}

/// The counters, one lock per kind, so a delivery never waits on ingest.
pub struct Traffic {
    webhooks: Mutex<Group>,
    events: Mutex<Group>,
    deliveries: Mutex<Group>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            webhooks: Mutex::new(Group::new(1, None)),
            events: Mutex::new(Group::new(EVENT_TYPES, Some(OTHER))),
            deliveries: Mutex::new(Group::new(LISTENERS, None)),
        }
    }
}

/// The series a chart shows: a name and its counts per minute, oldest first.
pub type Series = (String, Vec<u32>);

impl Traffic {
    /// The counters as the store left them (rows of any age; older than the
    /// window are ignored).
    pub fn restored(rows: Vec<Row>) -> Traffic {
        let t = Traffic::default();
        for row in rows {
            // Each minute of a series is stored once: adding it to a fresh
            // ring sets it, and sums it into "other" past the cap.
            t.group(row.kind).add(&row.name, row.minute, row.counts);
        }
        t
    }

    fn group(&self, kind: Kind) -> std::sync::MutexGuard<'_, Group> {
        let m = match kind {
            Kind::Webhooks => &self.webhooks,
            Kind::Events => &self.events,
            Kind::Deliveries => &self.deliveries,
        };
        // A panic under the lock left whole counts behind: keep counting.
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A webhook POST from Meta (or someone) was answered; `refused`: its
    /// signature was missing or wrong, or no secret was set to check it.
    pub fn webhook(&self, now_ms: u64, refused: bool) {
        let counts = if refused { [1, 1] } else { [1, 0] };
        self.group(Kind::Webhooks)
            .add("", minute_of(now_ms), counts);
    }

    /// Events stored for the first time, as (type, how many).
    pub fn events<'a>(&self, now_ms: u64, by_type: impl IntoIterator<Item = (&'a str, u32)>) {
        let minute = minute_of(now_ms);
        let mut group = self.group(Kind::Events);
        for (event_type, n) in by_type {
            group.add(event_type, minute, [n, 0]);
        }
    }

    /// A delivery attempt to `listener` ended: delivered (2xx) or failed.
    pub fn delivery(&self, now_ms: u64, listener: &str, delivered: bool) {
        let counts = if delivered { [1, 0] } else { [0, 1] };
        self.group(Kind::Deliveries)
            .add(listener, minute_of(now_ms), counts);
    }

    /// Every non-zero minute from `from` to `now_ms`'s minute: what a flush writes.
    pub fn rows_since(&self, from: u64, now_ms: u64) -> Vec<Row> {
        let now = minute_of(now_ms);
        let from = from.max((now + 1).saturating_sub(WINDOW));
        let mut rows = Vec::new();
        for kind in [Kind::Webhooks, Kind::Events, Kind::Deliveries] {
            let group = self.group(kind);
            for (name, ring) in &group.series {
                for minute in from..=now {
                    let counts = ring.at(minute);
                    if counts != [0; 2] {
                        rows.push(Row {
                            minute,
                            kind,
                            name: name.clone(),
                            counts,
                        });
                    }
                }
            }
        }
        rows
    }

    /// Webhook POSTs received and refused per minute over the window.
    pub fn webhooks(&self, now_ms: u64) -> [Series; 2] {
        let window = self
            .group(Kind::Webhooks)
            .series
            .get("")
            .map(|r| r.window(minute_of(now_ms)));
        split(window, ["received", "refused"])
    }

    /// One listener's delivered and failed attempts per minute over the window.
    pub fn deliveries(&self, listener: &str, now_ms: u64) -> [Series; 2] {
        let window = self
            .group(Kind::Deliveries)
            .series
            .get(listener)
            .map(|r| r.window(minute_of(now_ms)));
        split(window, ["delivered", "failed"])
    }

    /// Events per minute of the `keep` busiest types over the window, busiest
    /// first, then "other" for the rest if any of them had an event.
    pub fn events_by_type(&self, now_ms: u64, keep: usize) -> Vec<Series> {
        let now = minute_of(now_ms);
        let all: Vec<Series> = self
            .group(Kind::Events)
            .series
            .iter()
            .map(|(name, ring)| {
                let counts = ring.window(now).iter().map(|p| p[0]).collect();
                (name.clone(), counts)
            })
            .collect();
        top(all, keep)
    }
}

/// The two counts of each minute as two series (zeros for a missing ring).
fn split(window: Option<Vec<Pair>>, names: [&str; 2]) -> [Series; 2] {
    let window = window.unwrap_or_else(|| vec![[0; 2]; WINDOW as usize]);
    [0, 1].map(|i| (names[i].to_string(), window.iter().map(|p| p[i]).collect()))
}

fn total(counts: &[u32]) -> u64 {
    counts.iter().map(|&n| u64::from(n)).sum()
}

/// The `keep` series with the largest totals (ties by name), then one
/// [`OTHER`] that sums the rest; series without a count are left out.
pub fn top(mut all: Vec<Series>, keep: usize) -> Vec<Series> {
    all.retain(|(_, counts)| total(counts) > 0);
    all.sort_by(|a, b| {
        let other = |s: &Series| s.0 == OTHER;
        other(a)
            .cmp(&other(b))
            .then(total(&b.1).cmp(&total(&a.1)))
            .then(a.0.cmp(&b.0))
    });
    if all.len() <= keep {
        return all;
    }
    let rest = all.split_off(keep);
    let mut other = vec![0u32; rest[0].1.len()];
    for (_, counts) in &rest {
        for (o, n) in other.iter_mut().zip(counts) {
            *o = o.saturating_add(*n);
        }
    }
    all.push((OTHER.to_string(), other));
    all
}

/// Sums consecutive runs of `per` minutes (the last run may be shorter): a
/// day of minutes as 288 five-minute buckets for a chart.
pub fn buckets(counts: &[u32], per: usize) -> Vec<u64> {
    counts
        .chunks(per.max(1))
        .map(|c| c.iter().map(|&n| u64::from(n)).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 30_000_000 * MINUTE_MS;

    fn sum(s: &Series) -> u64 {
        total(&s.1)
    }

    #[test]
    fn counts_fall_in_their_minute_and_the_window_ends_now() {
        let t = Traffic::default();
        t.webhook(T0, false);
        t.webhook(T0 + 59_999, true);
        t.webhook(T0 + MINUTE_MS, false);
        let [received, refused] = t.webhooks(T0 + MINUTE_MS);
        assert_eq!(received.1.len(), WINDOW as usize);
        assert_eq!(received.1[WINDOW as usize - 2..], [2, 1]);
        assert_eq!(refused.1[WINDOW as usize - 2..], [1, 0]);
        assert_eq!((sum(&received), sum(&refused)), (3, 1));
    }

    #[test]
    fn a_count_leaves_the_window_after_24_hours() {
        let t = Traffic::default();
        t.delivery(T0, "lst_a", true);
        t.delivery(T0, "lst_a", false);
        let day = WINDOW * MINUTE_MS;
        let [ok, failed] = t.deliveries("lst_a", T0 + day - MINUTE_MS);
        assert_eq!(
            (sum(&ok), sum(&failed)),
            (1, 1),
            "the last minute of the window"
        );
        assert_eq!(ok.1[0], 1, "as its oldest minute");
        let [ok, _] = t.deliveries("lst_a", T0 + day);
        assert_eq!(sum(&ok), 0);
        // Counting again after a long silence clears what the ring held.
        t.delivery(T0 + 3 * day, "lst_a", true);
        let [ok, failed] = t.deliveries("lst_a", T0 + 3 * day);
        assert_eq!((sum(&ok), sum(&failed)), (1, 0));
        assert!(t.rows_since(0, T0 + 3 * day).len() == 1);
    }

    #[test]
    fn a_late_count_is_not_lost_and_an_ancient_one_is_ignored() {
        let t = Traffic::default();
        t.events(T0 + 10 * MINUTE_MS, [("whatsapp.message.received", 1)]);
        t.events(T0, [("whatsapp.message.received", 2)]);
        t.events(T0 - WINDOW * MINUTE_MS, [("whatsapp.message.received", 5)]);
        let series = t.events_by_type(T0 + 10 * MINUTE_MS, 4);
        assert_eq!(sum(&series[0]), 3);
    }

    #[test]
    fn listeners_beyond_the_cap_go_uncounted_until_one_is_quiet() {
        let t = Traffic::default();
        for i in 0..LISTENERS {
            t.delivery(T0, &format!("lst_{i}"), true);
        }
        t.delivery(T0, "lst_new", true);
        assert_eq!(sum(&t.deliveries("lst_new", T0)[0]), 0);
        assert_eq!(t.group(Kind::Deliveries).series.len(), LISTENERS);
        // A day later every old listener is quiet: the new one takes a place.
        let later = T0 + WINDOW * MINUTE_MS;
        t.delivery(later, "lst_new", true);
        assert_eq!(sum(&t.deliveries("lst_new", later)[0]), 1);
        assert_eq!(t.group(Kind::Deliveries).series.len(), LISTENERS);
    }

    #[test]
    fn event_types_beyond_the_cap_are_merged_into_other() {
        let t = Traffic::default();
        for i in 0..EVENT_TYPES {
            t.events(T0, [(format!("whatsapp.t{i:02}").as_str(), 1)]);
        }
        t.events(T0, [("whatsapp.late", 7), ("whatsapp.later", 1)]);
        assert_eq!(t.group(Kind::Events).series.len(), EVENT_TYPES + 1);
        let all = t.events_by_type(T0, usize::MAX);
        let other = all.iter().find(|s| s.0 == OTHER).unwrap();
        assert_eq!(sum(other), 8);
        assert_eq!(all.last().unwrap().0, OTHER, "other comes last");
    }

    #[test]
    fn a_chart_keeps_the_busiest_types_and_sums_the_rest() {
        let s = |name: &str, n: u32| (name.to_string(), vec![n, 0]);
        let shown = top(
            vec![s("a", 1), s("b", 5), s("c", 3), s("d", 2), s("quiet", 0)],
            2,
        );
        let got: Vec<_> = shown.iter().map(|x| (x.0.as_str(), sum(x))).collect();
        assert_eq!(got, [("b", 5), ("c", 3), (OTHER, 3)]);
        assert_eq!(top(vec![s("quiet", 0)], 2), Vec::<Series>::new());
    }

    #[test]
    fn stored_rows_come_back_and_a_flush_writes_the_minutes_since() {
        let t = Traffic::default();
        t.webhook(T0, false);
        t.events(T0 + MINUTE_MS, [("whatsapp.message.status", 2)]);
        t.delivery(T0 + 2 * MINUTE_MS, "lst_a", false);
        let now = T0 + 2 * MINUTE_MS;
        let mut rows = t.rows_since(0, now);
        rows.sort_by_key(|r| r.minute);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            Row {
                minute: minute_of(T0) + 1,
                kind: Kind::Events,
                name: "whatsapp.message.status".into(),
                counts: [2, 0],
            }
        );
        assert_eq!(t.rows_since(minute_of(now), now).len(), 1);

        let back = Traffic::restored(rows);
        assert_eq!(sum(&back.webhooks(now)[0]), 1);
        assert_eq!(sum(&back.events_by_type(now, 4)[0]), 2);
        assert_eq!(sum(&back.deliveries("lst_a", now)[1]), 1);
        // Counting on after a restore adds to the stored minute.
        back.webhook(T0, true);
        assert_eq!(back.webhooks(now)[0].1[WINDOW as usize - 3], 2);
    }

    #[test]
    fn minutes_are_summed_into_buckets() {
        let minutes: Vec<u32> = (0..WINDOW as u32).map(|m| m % 2).collect();
        let b = buckets(&minutes, 5);
        assert_eq!(b.len(), 288);
        assert_eq!((b[0], b[1]), (2, 3));
        assert_eq!(buckets(&[1, 2, 3], 2), [3, 3]);
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in [Kind::Webhooks, Kind::Events, Kind::Deliveries] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
