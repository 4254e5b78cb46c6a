//! The Meta App settings the admin enters, and the URLs to paste into Meta's
//! dashboard.

use std::sync::PoisonError;

use serde::{Deserialize, Serialize};

use super::{blocking, Services};
use crate::domain::model::Settings;
use crate::domain::password;
use crate::domain::paths;
use crate::error::Error;

/// The settings as shown back (the admin API's JSON): the secret only as
/// "set or not".
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub client_id: String,
    pub client_secret_set: bool,
    pub es_config_id: String,
    pub verify_token: String,
    pub require_open_window: bool,
    /// Meta's callback URL for the webhook.
    pub webhook_url: String,
    /// The OAuth redirect URI.
    pub callback_url: String,
}

pub fn view(app: &Services) -> SettingsView {
    let s = app.settings();
    SettingsView {
        client_id: s.client_id,
        client_secret_set: !s.client_secret.is_empty(),
        es_config_id: s.es_config_id,
        verify_token: s.verify_token,
        require_open_window: s.require_open_window,
        webhook_url: paths::public(&app.public_url, paths::EVENTS),
        callback_url: paths::public(&app.public_url, paths::CALLBACK),
    }
}

/// What to change; `None` keeps the value.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigChange {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub es_config_id: Option<String>,
    pub verify_token: Option<String>,
    pub require_open_window: Option<bool>,
}

/// Validates and stores a settings change, then makes it the one in force.
pub async fn save(app: &Services, change: ConfigChange) -> Result<(), Error> {
    let mut next = app.settings();
    apply(&mut next, change)?;
    app.store.put_settings(next.clone()).await?;
    *app.settings.write().unwrap_or_else(PoisonError::into_inner) = next;
    tracing::info!("admin settings changed");
    Ok(())
}

fn apply(s: &mut Settings, c: ConfigChange) -> Result<(), Error> {
    if let Some(v) = c.client_id {
        s.client_id = digits("clientId", v, "the Meta App ID (App settings → Basic)")?;
    }
    if let Some(v) = c.es_config_id {
        s.es_config_id = digits("esConfigId", v, "the Embedded Signup configuration ID")?;
    }
    if let Some(v) = c.client_secret {
        s.client_secret = printable("clientSecret", v)?;
    }
    if let Some(v) = c.verify_token {
        s.verify_token = printable("verifyToken", v)?;
    }
    if let Some(v) = c.require_open_window {
        s.require_open_window = v;
    }
    Ok(())
}

/// Meta's ids are numbers; an empty value clears the setting.
pub fn digits(field: &str, v: String, what: &str) -> Result<String, Error> {
    let v = v.trim().to_string();
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::invalid(
            field,
            format!("must be {what}: digits only"),
        ));
    }
    Ok(v)
}

fn printable(field: &str, v: String) -> Result<String, Error> {
    let v = v.trim().to_string();
    if v.len() > 256 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be at most 256 printable ASCII characters without spaces",
        ));
    }
    Ok(v)
}

/// A new admin password, typed the same twice.
pub struct NewPassword(String);

impl NewPassword {
    pub fn confirmed(new: &str, confirm: &str) -> Result<NewPassword, Error> {
        if new != confirm {
            return Err(Error::invalid("password", "the two new passwords differ"));
        }
        Ok(NewPassword(new.to_string()))
    }
}

/// Sets the admin password (an Argon2id hash). The front-end has checked
/// that the admin allowed it (their token or the current password).
pub async fn set_admin_password(app: &Services, new: NewPassword) -> Result<(), Error> {
    let phc = blocking(move || password::hash(&new.0)).await?;
    app.store.set_admin_password_hash(phc).await?;
    tracing::info!("admin password set");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_digits_and_secrets_printable() {
        let mut s = Settings::default();
        let change = ConfigChange {
            client_id: Some(" 123 ".into()),
            verify_token: Some("tok-1".into()),
            ..ConfigChange::default()
        };
        apply(&mut s, change).unwrap();
        assert_eq!(
            (s.client_id.as_str(), s.verify_token.as_str()),
            ("123", "tok-1")
        );
        let bad = ConfigChange {
            es_config_id: Some("12a".into()),
            ..ConfigChange::default()
        };
        assert!(
            matches!(apply(&mut s, bad), Err(Error::Invalid { field, .. }) if field == "esConfigId")
        );
        let spaced = ConfigChange {
            client_secret: Some("a b".into()),
            ..ConfigChange::default()
        };
        assert!(apply(&mut s, spaced).is_err());
    }
}
