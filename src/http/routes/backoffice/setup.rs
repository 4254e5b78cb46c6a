//! The Setup page: the Meta App settings, the values to paste into Meta's
//! dashboard, the live checklist, and the admin password.

use askama::Template;
use hyper::StatusCode;

use super::chart::{Chart, Svg};
use super::login::{check_credential, Verdict};
use super::views::{stamp, Chrome};
use super::{html, Ctx, Done, Form, SETUP};
use crate::domain::model::Settings;
use crate::domain::paths;
use crate::domain::webhook_health::{FailureKind, WebhookFacts};
use crate::error::Error;
use crate::http::response::Resp;
use crate::http::session::Flash;
use crate::usecase::settings::{self, ConfigChange, NewPassword};

/// A value for Meta's dashboard, with where it goes.
pub struct MetaValue {
    pub label: &'static str,
    pub place: &'static str,
    pub value: String,
}

/// One line of the checklist. `state` is ok, warn, bad, todo or info.
pub struct CheckItem {
    pub state: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Failures per hour over the last day, scaled 0..=8, for a small bar chart.
    pub bars: Vec<u8>,
}

impl CheckItem {
    /// The word on the item's pill.
    pub fn label(&self) -> &'static str {
        match self.state {
            "ok" => "Done",
            "warn" => "Check",
            "bad" => "Fix",
            "todo" => "To do",
            _ => "Info",
        }
    }
}

#[derive(Template)]
#[template(path = "admin/setup.html")]
struct SetupPage {
    chrome: Chrome,
    settings: Settings,
    secret_set: bool,
    password_set: bool,
    meta_values: Vec<MetaValue>,
    checklist: Vec<CheckItem>,
    /// Meta's webhook POSTs, received and refused, over the last 24 hours.
    traffic: Svg,
}

#[derive(Template)]
#[template(path = "admin/checklist.html")]
struct ChecklistFragment {
    checklist: Vec<CheckItem>,
}

pub async fn page(cx: &Ctx<'_>) -> Result<Resp, Error> {
    let settings = cx.state.settings();
    let page = SetupPage {
        chrome: cx.chrome("setup"),
        secret_set: !settings.client_secret.is_empty(),
        password_set: cx.state.store.admin_password_hash()?.is_some(),
        meta_values: meta_values(&cx.state.public_url, &settings),
        checklist: checklist_of(cx)?,
        traffic: Chart {
            id: "webhooks-chart",
            what: "Webhook POSTs",
            series: &cx.state.traffic.webhooks(cx.now),
        }
        .draw(),
        settings,
    };
    Ok(html(StatusCode::OK, &page))
}

/// The checklist alone: the page's script swaps it in every few seconds.
pub async fn checklist(cx: &Ctx<'_>) -> Result<Resp, Error> {
    Ok(html(
        StatusCode::OK,
        &ChecklistFragment {
            checklist: checklist_of(cx)?,
        },
    ))
}

fn checklist_of(cx: &Ctx<'_>) -> Result<Vec<CheckItem>, Error> {
    let accounts = cx.state.store.accounts()?.len();
    Ok(checklist_items(
        &cx.state.settings(),
        &cx.state.watch.snapshot(),
        accounts,
        cx.now,
    ))
}

fn meta_values(public_url: &str, s: &Settings) -> Vec<MetaValue> {
    let parsed = url::Url::parse(public_url).ok();
    let domain = parsed
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .to_string();
    let origin = parsed
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    vec![
        MetaValue {
            label: "Valid OAuth Redirect URI",
            place: "Facebook Login for Business → Settings → Valid OAuth Redirect URIs",
            value: paths::public(public_url, paths::CALLBACK),
        },
        MetaValue {
            label: "Callback URL",
            place: "WhatsApp → Configuration → Webhooks → Edit → Callback URL",
            value: paths::public(public_url, paths::EVENTS),
        },
        MetaValue {
            label: "Verify token",
            place: "WhatsApp → Configuration → Webhooks → Edit → Verify token",
            value: s.verify_token.clone(),
        },
        MetaValue {
            label: "App Domain",
            place: "App settings → Basic → App Domains",
            value: domain,
        },
        MetaValue {
            label: "JavaScript SDK allowed domain",
            place: "Facebook Login for Business → Settings → Allowed Domains for the JavaScript SDK (Embedded Signup only; set Login with the JavaScript SDK to Yes)",
            value: origin,
        },
    ]
}

/// Where the admin stands, from what wabridge has actually seen.
pub fn checklist_items(
    s: &Settings,
    facts: &WebhookFacts,
    accounts: usize,
    now: u64,
) -> Vec<CheckItem> {
    vec![
        credentials_item(s),
        handshake_item(s, facts, now),
        signed_event_item(s, facts, now),
        failures_item(facts, now),
        signup_item(s),
        accounts_item(accounts),
    ]
}

fn item(state: &'static str, title: &'static str, detail: impl Into<String>) -> CheckItem {
    CheckItem {
        state,
        title,
        detail: detail.into(),
        bars: Vec::new(),
    }
}

fn credentials_item(s: &Settings) -> CheckItem {
    const T: &str = "App ID and App Secret";
    match (s.client_id.is_empty(), s.client_secret.is_empty()) {
        (false, false) => item("ok", T, "Both are set. The secret also verifies every webhook (X-Hub-Signature-256)."),
        (true, true) => item("todo", T, "Not set yet. Copy them from the Meta App: App settings → Basic."),
        (false, true) => item("bad", T, "The App Secret is missing: until it is set, Meta's webhooks are answered 503 and no token can be checked."),
        (true, false) => item("bad", T, "The App ID is missing: it is needed to check tokens and for customer sign-up."),
    }
}

fn handshake_item(s: &Settings, f: &WebhookFacts, now: u64) -> CheckItem {
    const T: &str = "Meta's verification handshake";
    let Some(h) = f.last_handshake else {
        let what = if s.verify_token.is_empty() {
            "Set a verify token above, then in"
        } else {
            "In"
        };
        return item(
            "todo",
            T,
            format!("Not received yet. {what} Meta: WhatsApp → Configuration → Webhooks → Edit, paste the Callback URL and the verify token, then Verify and save."),
        );
    };
    let when = stamp(h.at_ms, now);
    if h.token_matched {
        item(
            "ok",
            T,
            format!(
                "Received {} ({}); the verify token matched.",
                when.ago, when.full
            ),
        )
    } else {
        item(
            "bad",
            T,
            format!(
                "Received {} ({}), but the verify token did not match, so Meta shows \"Couldn't validate the callback URL\". The verify token in Meta's dashboard must equal the one above: re-check both and save again.",
                when.ago, when.full
            ),
        )
    }
}

fn signed_event_item(s: &Settings, f: &WebhookFacts, now: u64) -> CheckItem {
    const T: &str = "Signed events from Meta";
    if let Some(at) = f.last_signed_event_ms {
        let when = stamp(at, now);
        return item(
            "ok",
            T,
            format!("Last signed event received {} ({}).", when.ago, when.full),
        );
    }
    if let (Some(at), true) = (f.last_unconfigured_ms, s.client_secret.is_empty()) {
        return item(
            "bad",
            T,
            format!("Meta tried to deliver events {} but no App Secret is set, so they were answered 503 (Meta retries). Enter the App Secret above.", stamp(at, now).ago),
        );
    }
    item(
        "todo",
        T,
        "None yet. Subscribe the messages field (WhatsApp → Configuration → Webhooks → messages → Subscribe), then write to your business number from a phone: outbound sends produce statuses, only inbound messages produce messages.",
    )
}

fn failures_item(f: &WebhookFacts, now: u64) -> CheckItem {
    const T: &str = "Signature failures in the last 24 h";
    let count = f.failures_last_24h(now);
    let mut it = if count == 0 {
        item("ok", T, "None.")
    } else {
        let cause = match f.last_failure.map(|(_, kind)| kind) {
            Some(FailureKind::Missing) => "the requests carried no X-Hub-Signature-256 header: they did not come from Meta, or a proxy in front of wabridge drops the header",
            _ => "the signature did not match: the App Secret set here is not the Meta App's (App settings → Basic → App Secret; it changes when someone resets it there)",
        };
        let last = f
            .last_failure
            .map(|(at, _)| format!(" The last one was {}.", stamp(at, now).ago))
            .unwrap_or_default();
        item(
            if count >= 10 { "bad" } else { "warn" },
            T,
            format!(
                "{count} webhook {} refused. Likely cause: {cause}.{last}",
                if count == 1 { "POST was" } else { "POSTs were" }
            ),
        )
    };
    let hourly = f.hourly_last_24h(now);
    let peak = hourly.iter().copied().max().unwrap_or(0).max(1);
    if count > 0 {
        it.bars = hourly
            .iter()
            .map(|n| ((u64::from(*n) * 8).div_ceil(u64::from(peak))) as u8)
            .collect();
    }
    it
}

fn signup_item(s: &Settings) -> CheckItem {
    const T: &str = "Customer sign-up";
    if s.es_config_id.is_empty() {
        item(
            "info",
            T,
            "Plain OAuth in use: customers approve the WhatsApp permissions on Meta's consent screen, and wabridge finds their WABAs through their businesses. Set the Embedded Signup configuration ID for Meta's guided wizard, in which they pick or create a WABA and phone number.",
        )
    } else {
        item(
            "ok",
            T,
            "Embedded Signup configured: customers pick or create their WABA in Meta's wizard. It needs a verified business, Advanced Access and the JavaScript SDK allowed domain below.",
        )
    }
}

fn accounts_item(accounts: usize) -> CheckItem {
    const T: &str = "Connected accounts";
    match accounts {
        0 => item("todo", T, "None yet. Add one with a System User token, or send a customer a connect link (Accounts)."),
        1 => item("ok", T, "1 account connected."),
        n => item("ok", T, format!("{n} accounts connected.")),
    }
}

pub async fn save(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let secret = form.get("clientSecret").trim();
    let change = ConfigChange {
        client_id: Some(form.get("clientId").to_string()),
        // Write-only: an empty field keeps the secret that is set.
        client_secret: (!secret.is_empty()).then(|| secret.to_string()),
        es_config_id: Some(form.get("esConfigId").to_string()),
        verify_token: Some(form.get("verifyToken").to_string()),
        // An unticked checkbox is absent from the form.
        require_open_window: Some(form.get("requireOpenWindow") == "on"),
    };
    settings::save(cx.state, change).await?;
    Ok(Done::to(SETUP, Flash::ok("Settings saved.")))
}

/// Sets the admin password; the current admin token or password must be given.
pub async fn set_password(cx: &Ctx<'_>, form: &Form) -> Result<Done, Error> {
    let new = NewPassword::confirmed(form.get("password"), form.get("confirm"))?;
    match check_credential(cx.state, form.get("current")).await? {
        Verdict::Valid => {}
        Verdict::Invalid => {
            return Err(Error::invalid(
                "current",
                "that is not the admin token or the current password",
            ))
        }
        Verdict::Busy => {
            return Err(Error::Busy {
                message: "many passwords are being checked right now; try again in a few seconds",
                retry_after: 5,
            })
        }
    }
    settings::set_admin_password(cx.state, new).await?;
    Ok(Done::to(
        SETUP,
        Flash::ok("Admin password set. You can log in with it or with the admin token."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(s: &Settings, f: &WebhookFacts) -> Vec<&'static str> {
        checklist_items(s, f, 0, 10_000_000)
            .iter()
            .map(|i| i.state)
            .collect()
    }

    #[test]
    fn a_fresh_install_is_all_to_do() {
        let s = Settings::default();
        assert_eq!(
            states(&s, &WebhookFacts::default()),
            ["todo", "todo", "todo", "ok", "info", "todo"]
        );
    }

    #[test]
    fn what_was_seen_moves_the_checklist() {
        let s = Settings {
            client_id: "1".into(),
            client_secret: "s".into(),
            es_config_id: "2".into(),
            verify_token: "v".into(),
            require_open_window: false,
        };
        let mut f = WebhookFacts::default();
        f.record_handshake(9_000_000, false);
        f.record_bad_signature(9_500_000, FailureKind::Mismatch);
        let items = checklist_items(&s, &f, 2, 10_000_000);
        let got: Vec<_> = items.iter().map(|i| i.state).collect();
        assert_eq!(got, ["ok", "bad", "todo", "warn", "ok", "ok"]);
        assert!(items[1].detail.contains("did not match"));
        assert!(items[3].detail.contains("App Secret"));
        assert_eq!(items[3].bars.len(), 24);
        assert_eq!(items[3].bars[23], 8);

        f.record_handshake(9_900_000, true);
        f.record_signed_event(9_950_000);
        let got: Vec<_> = checklist_items(&s, &f, 2, 10_000_000)
            .iter()
            .map(|i| i.state)
            .collect();
        assert_eq!(got[1..3], ["ok", "ok"]);
    }
}
