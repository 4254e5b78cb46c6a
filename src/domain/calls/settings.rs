//! A phone number's calling settings as Meta's Settings API takes them
//! (`POST /{phone-number-id}/settings` with `{"calling": {…}}`), checked
//! before Meta is asked: the values of the top-level settings Meta's call
//! settings page lists, and the call hours' days and times. A top-level name
//! not in that list goes on unchecked: Meta adds settings over time, and it
//! refuses a name it does not know itself (its error comes back with our
//! hint), so a setting newer than wabridge is not blocked here. The object
//! goes on as given, in Meta's names.

use serde_json::{json, Map, Value};

use crate::domain::outbound::fields::{join, object};
use crate::error::Error;

/// The settings of a `calling` object whose values are checked here.
pub const FIELDS: [&str; 9] = [
    "status",
    "call_icon_visibility",
    "call_icons",
    "call_hours",
    "callback_permission_status",
    "srtp_key_exchange_protocol",
    "sip",
    "audio",
    "video",
];
const ON_OFF: [&str; 2] = ["ENABLED", "DISABLED"];
const ICON_VISIBILITY: [&str; 2] = ["DEFAULT", "DISABLE_ALL"];
const SRTP: [&str; 2] = ["DTLS", "SDES"];
const DAYS: [&str; 7] = [
    "MONDAY",
    "TUESDAY",
    "WEDNESDAY",
    "THURSDAY",
    "FRIDAY",
    "SATURDAY",
    "SUNDAY",
];
/// Meta: at most two opening periods a day, at most 20 holiday overrides.
const PERIODS_PER_DAY: usize = 2;
const HOLIDAYS_MAX: usize = 20;

/// Meta's body for a change of `calling` settings; only the settings given change.
pub fn meta_body(calling: Value) -> Result<Value, Error> {
    let Value::Object(c) = &calling else {
        return Err(Error::invalid(
            "body",
            "expected a JSON object: Meta's calling settings, e.g. {\"status\": \"ENABLED\"}",
        ));
    };
    if c.is_empty() {
        return Err(Error::invalid(
            "body",
            format!(
                "nothing to change: give one or more of {}",
                FIELDS.join(", ")
            ),
        ));
    }
    one_of(c, "", "status", &ON_OFF)?;
    one_of(c, "", "call_icon_visibility", &ICON_VISIBILITY)?;
    one_of(c, "", "callback_permission_status", &ON_OFF)?;
    one_of(c, "", "srtp_key_exchange_protocol", &SRTP)?;
    if let Some(icons) = c.get("call_icons") {
        call_icons(object("call_icons", icons)?)?;
    }
    if let Some(hours) = c.get("call_hours") {
        call_hours(object("call_hours", hours)?)?;
    }
    if let Some(sip) = c.get("sip") {
        sip_settings(object("sip", sip)?)?;
    }
    for media in ["audio", "video"] {
        if let Some(v) = c.get(media) {
            object(media, v)?;
        }
    }
    Ok(json!({ "calling": calling }))
}

fn call_icons(icons: &Map<String, Value>) -> Result<(), Error> {
    const AT: &str = "call_icons.restrict_to_user_countries";
    let Some(countries) = icons.get("restrict_to_user_countries") else {
        return Ok(());
    };
    let list = countries
        .as_array()
        .ok_or_else(|| Error::invalid(AT, "must be a list of two-letter country codes"))?;
    for (i, code) in list.iter().enumerate() {
        let ok = code
            .as_str()
            .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()));
        if !ok {
            return Err(Error::invalid(
                &format!("{AT}[{i}]"),
                "must be a two-letter country code such as US or BR",
            ));
        }
    }
    Ok(())
}

/// `{status, timezone_id, weekly_operating_hours, holiday_schedule?}`: open
/// hours as `HHMM`, opening before closing, at most two periods a day that
/// do not overlap.
fn call_hours(h: &Map<String, Value>) -> Result<(), Error> {
    let status = one_of(h, "call_hours", "status", &ON_OFF)?.ok_or_else(|| {
        Error::invalid(
            "call_hours.status",
            "is required: ENABLED (calls only in these hours) or DISABLED (any time)",
        )
    })?;
    match h.get("timezone_id") {
        Some(Value::String(tz)) if !tz.trim().is_empty() => {}
        None if status == "DISABLED" => {}
        _ => {
            return Err(Error::invalid(
                "call_hours.timezone_id",
                "is required: the time zone the hours are in, e.g. Europe/Prague",
            ))
        }
    }
    match h.get("weekly_operating_hours") {
        Some(week) => weekly_hours(week)?,
        None if status == "DISABLED" => {}
        None => {
            return Err(Error::invalid(
                "call_hours.weekly_operating_hours",
                "is required: [{day_of_week, open_time, close_time}, …]",
            ))
        }
    }
    if let Some(holidays) = h.get("holiday_schedule") {
        holiday_schedule(holidays)?;
    }
    Ok(())
}

fn weekly_hours(week: &Value) -> Result<(), Error> {
    const AT: &str = "call_hours.weekly_operating_hours";
    let days = week.as_array().ok_or_else(|| {
        Error::invalid(AT, "must be a list of {day_of_week, open_time, close_time}")
    })?;
    let mut periods: Vec<(&str, u32, u32)> = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let at = format!("{AT}[{i}]");
        let d = object(&at, day)?;
        let name = one_of(d, &at, "day_of_week", &DAYS)?.ok_or_else(|| {
            Error::invalid(
                &format!("{at}.day_of_week"),
                format!("is required: one of {}", DAYS.join(", ")),
            )
        })?;
        let open = time(d, &at, "open_time")?;
        let close = time(d, &at, "close_time")?;
        if open >= close {
            return Err(Error::invalid(
                &format!("{at}.close_time"),
                "must be after open_time",
            ));
        }
        let same_day: Vec<&(&str, u32, u32)> = periods.iter().filter(|p| p.0 == name).collect();
        if same_day.len() >= PERIODS_PER_DAY {
            return Err(Error::invalid(
                &at,
                format!("{name} has more than {PERIODS_PER_DAY} opening periods"),
            ));
        }
        if same_day.iter().any(|p| open < p.2 && p.1 < close) {
            return Err(Error::invalid(
                &at,
                format!("overlaps another period on {name}"),
            ));
        }
        periods.push((name, open, close));
    }
    Ok(())
}

fn holiday_schedule(holidays: &Value) -> Result<(), Error> {
    const AT: &str = "call_hours.holiday_schedule";
    let list = holidays
        .as_array()
        .ok_or_else(|| Error::invalid(AT, "must be a list of {date, start_time, end_time}"))?;
    if list.len() > HOLIDAYS_MAX {
        return Err(Error::invalid(
            AT,
            format!("at most {HOLIDAYS_MAX} holiday overrides"),
        ));
    }
    for (i, holiday) in list.iter().enumerate() {
        let at = format!("{AT}[{i}]");
        let h = object(&at, holiday)?;
        let ok = h.get("date").and_then(Value::as_str).is_some_and(is_date);
        if !ok {
            return Err(Error::invalid(
                &format!("{at}.date"),
                "is required: a date as YYYY-MM-DD",
            ));
        }
        let start = time(h, &at, "start_time")?;
        let end = time(h, &at, "end_time")?;
        if start >= end {
            return Err(Error::invalid(
                &format!("{at}.end_time"),
                "must be after start_time",
            ));
        }
    }
    Ok(())
}

/// `{status, servers: [{hostname, port?, request_uri_user_params?}]}`; an
/// empty list removes this app's SIP server.
fn sip_settings(sip: &Map<String, Value>) -> Result<(), Error> {
    one_of(sip, "sip", "status", &ON_OFF)?;
    let Some(servers) = sip.get("servers") else {
        return Ok(());
    };
    let servers = servers
        .as_array()
        .ok_or_else(|| Error::invalid("sip.servers", "must be a list of {hostname, port?}"))?;
    for (i, server) in servers.iter().enumerate() {
        let at = format!("sip.servers[{i}]");
        let s = object(&at, server)?;
        let hostname = s.get("hostname").and_then(Value::as_str);
        if hostname.is_none_or(|h| h.trim().is_empty()) {
            return Err(Error::invalid(
                &format!("{at}.hostname"),
                "is required: the SIP server's host name (TLS)",
            ));
        }
        if let Some(port) = s.get("port") {
            if !port.as_u64().is_some_and(|p| (1..=65535).contains(&p)) {
                return Err(Error::invalid(
                    &format!("{at}.port"),
                    "must be a port number, 1 to 65535 (Meta's default is 5061)",
                ));
            }
        }
        if let Some(params) = s.get("request_uri_user_params") {
            object(&format!("{at}.request_uri_user_params"), params)?;
        }
    }
    Ok(())
}

/// `key` of `m`, if present, one of `allowed`.
fn one_of<'a>(
    m: &'a Map<String, Value>,
    at: &str,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Error> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(v)) if allowed.contains(&v.as_str()) => Ok(Some(v)),
        Some(_) => Err(Error::invalid(
            &join(at, key),
            format!("must be one of {}", allowed.join(", ")),
        )),
    }
}

/// A time of day as Meta writes it, `HHMM` (`0930`), in minutes.
fn time(m: &Map<String, Value>, at: &str, key: &str) -> Result<u32, Error> {
    let parsed = m.get(key).and_then(Value::as_str).and_then(|t| {
        if t.len() != 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, min) = (t[..2].parse::<u32>().ok()?, t[2..].parse::<u32>().ok()?);
        (h < 24 && min < 60).then_some(h * 60 + min)
    });
    parsed.ok_or_else(|| {
        Error::invalid(
            &join(at, key),
            "must be a time of day as HHMM, e.g. 0930 or 1745",
        )
    })
}

fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return false;
    }
    let month: u32 = d[5..7].parse().unwrap_or(0);
    let day: u32 = d[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(calling: Value) -> String {
        match meta_body(calling) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn metas_sample_settings_are_taken_as_they_are() {
        let calling = json!({
            "status": "ENABLED",
            "call_icon_visibility": "DEFAULT",
            "call_icons": {"restrict_to_user_countries": ["US", "BR"]},
            "call_hours": {
                "status": "ENABLED",
                "timezone_id": "America/Manaus",
                "weekly_operating_hours": [
                    {"day_of_week": "MONDAY", "open_time": "0400", "close_time": "1020"},
                    {"day_of_week": "MONDAY", "open_time": "1100", "close_time": "2000"},
                    {"day_of_week": "TUESDAY", "open_time": "0108", "close_time": "1020"}
                ],
                "holiday_schedule": [{"date": "2026-01-01", "start_time": "0000", "end_time": "2359"}]
            },
            "callback_permission_status": "ENABLED",
            "sip": {"status": "DISABLED", "servers": [{"hostname": "sip.example.com", "port": 5061, "request_uri_user_params": {"KEY1": "VALUE1"}}]}
        });
        assert_eq!(
            meta_body(calling.clone()).unwrap(),
            json!({ "calling": calling })
        );
        assert!(meta_body(json!({"call_hours": {"status": "DISABLED"}})).is_ok());
    }

    #[test]
    fn a_setting_newer_than_wabridge_goes_on_to_meta_unchanged() {
        // Known settings are still checked; an unknown name (a new setting,
        // or a misspelt one) is Meta's to judge.
        let calling = json!({
            "status": "ENABLED",
            "call_icon_visiblity": "DEFAULT",
            "voicemail": {"status": "ENABLED", "greeting": {"id": "1"}}
        });
        assert_eq!(
            meta_body(calling.clone()).unwrap(),
            json!({ "calling": calling })
        );
        assert_eq!(
            refused(json!({"status": "enabled", "voicemail": {}})),
            "status"
        );
    }

    #[test]
    fn each_wrong_setting_is_refused_with_its_field() {
        let hours = |week: Value| json!({"call_hours": {"status": "ENABLED", "timezone_id": "Europe/Prague", "weekly_operating_hours": week}});
        let day = |d: &str, open: &str, close: &str| json!({"day_of_week": d, "open_time": open, "close_time": close});
        for (calling, field) in [
            (json!({}), "body"),
            (json!({"status": "enabled"}), "status"),
            (
                json!({"call_icon_visibility": "HIDE"}),
                "call_icon_visibility",
            ),
            (
                json!({"callback_permission_status": true}),
                "callback_permission_status",
            ),
            (
                json!({"srtp_key_exchange_protocol": "ZRTP"}),
                "srtp_key_exchange_protocol",
            ),
            (
                json!({"call_icons": {"restrict_to_user_countries": ["USA"]}}),
                "call_icons.restrict_to_user_countries[0]",
            ),
            (
                json!({"call_hours": {"timezone_id": "Europe/Prague"}}),
                "call_hours.status",
            ),
            (
                json!({"call_hours": {"status": "ENABLED", "weekly_operating_hours": []}}),
                "call_hours.timezone_id",
            ),
            (
                hours(json!([day("MONDAY", "0900", "0800")])),
                "call_hours.weekly_operating_hours[0].close_time",
            ),
            (
                hours(json!([day("MONDAY", "0960", "1000")])),
                "call_hours.weekly_operating_hours[0].open_time",
            ),
            (
                hours(json!([day("FUNDAY", "0900", "1000")])),
                "call_hours.weekly_operating_hours[0].day_of_week",
            ),
            (
                hours(json!([
                    day("MONDAY", "0900", "1200"),
                    day("MONDAY", "1100", "1300")
                ])),
                "call_hours.weekly_operating_hours[1]",
            ),
            (
                hours(json!([
                    day("MONDAY", "0800", "0900"),
                    day("MONDAY", "1000", "1100"),
                    day("MONDAY", "1200", "1300")
                ])),
                "call_hours.weekly_operating_hours[2]",
            ),
            (
                json!({"call_hours": {"status": "DISABLED", "holiday_schedule": [{"date": "2026-13-01", "start_time": "0000", "end_time": "2359"}]}}),
                "call_hours.holiday_schedule[0].date",
            ),
            (
                json!({"sip": {"status": "ENABLED", "servers": [{"port": 5061}]}}),
                "sip.servers[0].hostname",
            ),
            (
                json!({"sip": {"servers": [{"hostname": "sip.example.com", "port": 70000}]}}),
                "sip.servers[0].port",
            ),
            (json!({"video": "on"}), "video"),
        ] {
            assert_eq!(refused(calling.clone()), field, "{calling}");
        }
        assert_eq!(refused(json!("ENABLED")), "body");
    }
}
