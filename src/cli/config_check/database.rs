//! The database's side: the secrets key that opens it and the admin's settings
//! in it, read from the file, or asked of the server that holds it.

use std::fs;
use std::time::Duration;

use super::Report;
use crate::cli::client;
use crate::config::ServeArgs;
use crate::store;
use crate::store::tables_schema_version;

const SET_SECRET: &str =
    "set it with PUT /api/v1/admin/config {\"clientSecret\": \"<Meta App secret>\"}";

pub(super) fn check_database(args: &ServeArgs, server_running: bool, r: &mut Report) {
    let path = args.data_dir.join("wabridge.redb");
    if !server_running && !path.exists() {
        check_secrets_key(args, Some(None), r);
        r.note(
            "database",
            format!("{} (created at first start)", path.display()),
        );
        r.problem(format!(
            "no clientSecret: the database does not exist yet, so Meta's webhooks cannot be verified (503) until you start wabridge and {SET_SECRET}"
        ));
        return;
    }
    let summary = if server_running {
        None
    } else {
        match store::inspect(&path) {
            Ok(s) => s,
            Err(e) => {
                r.problem(format!("database {}: {e}", path.display()));
                return;
            }
        }
    };
    let Some(s) = summary else {
        check_secrets_key(args, None, r);
        ask_server(args, r);
        return;
    };
    check_secrets_key(args, Some(s.key_check.as_deref()), r);
    let known = tables_schema_version();
    match s.schema_version {
        Some(v) if v > known => r.problem(format!(
            "the database has schema version {v}, written by a newer wabridge (this one knows {known})"
        )),
        None => r.problem(format!("{} has no schema version: not a wabridge database", path.display())),
        _ => {}
    }
    r.note(
        "database",
        format!(
            "{}: schema {}, {} accounts, {} listeners, {} events, {} deliveries queued",
            path.display(),
            s.schema_version.unwrap_or(0),
            s.rows_of("accounts"),
            s.rows_of("listeners"),
            s.rows_of("events"),
            s.rows_of("outbox"),
        ),
    );
    settings_report(
        &Stored {
            secret_set: !s.settings.client_secret.is_empty(),
            client_id: s.settings.client_id.clone(),
            verify_token_len: s.settings.verify_token.chars().count(),
            es_config_id: s.settings.es_config_id.clone(),
            require_open_window: s.settings.require_open_window,
        },
        r,
    );
    if !s.admin_token_set && client::admin_token().is_none() {
        r.note(
            "admin token",
            "none yet: the first start generates one and prints it once",
        );
    }
}

/// Where the secrets key is and whether it opens the database's secrets.
/// `key_check`: what the database stored for the key to open (`Some(None)`:
/// nothing sealed yet; `None`: not known, a server holds the database).
fn check_secrets_key(args: &ServeArgs, key_check: Option<Option<&str>>, r: &mut Report) {
    let key = store::locate_key(&args.data_dir, args.secrets_key.as_deref());
    let at = format!("{} ({})", key.path.display(), key.origin.describe());
    let found = match store::read_key(&key.path) {
        Ok(found) => found,
        Err(e) => {
            r.problem(format!("{e} (run config check as the service's user)"));
            return;
        }
    };
    let Some(found) = found else {
        match key_check {
            Some(None) => r.note("secrets key", format!("{at}: generated at first start")),
            Some(Some(_)) => r.problem(format!(
                "the secrets key {} is missing, but the database holds secrets encrypted with it: serve refuses to start; put the key file back or point --secrets-key (WABRIDGE_SECRETS_KEY) at it",
                key.path.display()
            )),
            None => r.problem(format!(
                "the secrets key {} is missing: the running server has it in memory, but the next start fails; put the key file back (docs/security.md)",
                key.path.display()
            )),
        }
        return;
    };
    if key.origin != store::KeyOrigin::Credential {
        if let Ok(m) = fs::metadata(&key.path) {
            let mode = std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777;
            if mode & 0o077 != 0 {
                r.warning(format!(
                    "the secrets key {} has mode {mode:o}: others can read it; serve makes it 0600",
                    key.path.display()
                ));
            }
        }
    }
    match key_check {
        Some(Some(check)) if !store::key_opens(&found, check) => r.problem(format!(
            "the secrets key {} is not the key the database's secrets were encrypted with: serve refuses to start; put the right key file there",
            key.path.display()
        )),
        Some(Some(_)) => r.note("secrets key", format!("{at}: opens the database's secrets")),
        _ => r.note("secrets key", at),
    }
}

/// The admin's settings as config check reports them: secrets only as set or not.
struct Stored {
    secret_set: bool,
    client_id: String,
    verify_token_len: usize,
    es_config_id: String,
    require_open_window: bool,
}

fn settings_report(s: &Stored, r: &mut Report) {
    let Stored {
        secret_set,
        ref client_id,
        verify_token_len,
        ref es_config_id,
        require_open_window,
    } = *s;
    r.note(
        "clientId",
        if client_id.is_empty() {
            "-"
        } else {
            client_id.as_str()
        },
    );
    r.note(
        "clientSecret",
        if secret_set {
            "set (masked)"
        } else {
            "NOT SET"
        },
    );
    r.note(
        "verifyToken",
        if verify_token_len > 0 {
            format!("set, masked ({verify_token_len} characters)")
        } else {
            "-".into()
        },
    );
    r.note(
        "esConfigId",
        if es_config_id.is_empty() {
            "-"
        } else {
            es_config_id.as_str()
        },
    );
    r.note(
        "requireOpenWindow",
        if require_open_window {
            "on: free-form sends outside the 24-hour window are refused (409)"
        } else {
            "off: such sends go out with window \"closed\" and a warning"
        },
    );
    if !secret_set {
        r.problem(format!(
            "no clientSecret is stored: Meta's webhooks cannot be verified and get 503; {SET_SECRET}"
        ));
    }
    if client_id.is_empty() {
        r.warning("no clientId (the Meta App ID): accounts cannot be added or connected yet");
    }
    if verify_token_len == 0 {
        r.warning(
            "no verifyToken: Meta's webhook verification (GET …/events) fails until it is set",
        );
    }
}

/// The server holds the database: ask it what the admin has configured.
fn ask_server(args: &ServeArgs, r: &mut Report) {
    r.note("database", "held by the running server; asking it");
    let Some(token) = client::admin_token() else {
        r.warning("a running server holds the database, so whether clientSecret is set cannot be read here: set WABRIDGE_ADMIN_TOKEN to let config check ask the server");
        return;
    };
    let url = format!("{}/api/v1/admin/config", client::local_base(args));
    let agent = client::agent(&url, Duration::from_secs(5), false);
    let resp = agent
        .get(&url)
        .header("authorization", &format!("Bearer {token}"))
        .call();
    let mut resp = match resp {
        Ok(resp) => resp,
        Err(e) => {
            r.warning(format!(
                "cannot ask the running server at {url}: {}",
                client::describe(&e)
            ));
            return;
        }
    };
    match resp.status().as_u16() {
        200 => {
            let v: serde_json::Value = resp.body_mut().read_json().unwrap_or_default();
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            settings_report(
                &Stored {
                    secret_set: v["clientSecretSet"].as_bool().unwrap_or(false),
                    client_id: text("clientId"),
                    verify_token_len: text("verifyToken").chars().count(),
                    es_config_id: text("esConfigId"),
                    require_open_window: v["requireOpenWindow"].as_bool().unwrap_or(false),
                },
                r,
            );
        }
        401 => r.problem("WABRIDGE_ADMIN_TOKEN is not the running server's admin token"),
        s => r.warning(format!("the running server answered HTTP {s} at {url}")),
    }
}
