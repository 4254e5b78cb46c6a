//! The admin's settings and the admin token's hash.

use super::codec::{dec, enc};
use super::tables::SETTINGS;
use super::Store;
use crate::domain::model::Settings;
use crate::domain::webhook_health::WebhookFacts;
use crate::error::Error;

pub(super) const APP: &str = "app";
const ADMIN_TOKEN_HASH: &str = "admin_token_hash";
const ADMIN_PASSWORD_HASH: &str = "admin_password_hash";
const WEBHOOK_FACTS: &str = "webhook_facts";

impl Store {
    /// The settings with `clientSecret` decrypted. The server keeps them in
    /// memory, so the webhook's HMAC check decrypts nothing per request.
    pub fn settings(&self) -> Result<Settings, Error> {
        self.read(|tx| {
            let t = tx.open_table(SETTINGS)?;
            let v = t.get(APP)?;
            v.map(|v| self.sealer.open_settings(v.value()))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    pub async fn put_settings(&self, settings: Settings) -> Result<(), Error> {
        let sealed = self.sealer.seal_settings(&settings)?;
        self.write(move |tx| {
            tx.open_table(SETTINGS)?.insert(APP, sealed.as_slice())?;
            Ok(())
        })
        .await
    }

    pub fn admin_token_hash(&self) -> Result<Option<String>, Error> {
        self.read(|tx| {
            let t = tx.open_table(SETTINGS)?;
            let v = t.get(ADMIN_TOKEN_HASH)?;
            Ok(v.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
        })
    }

    pub async fn set_admin_token_hash(&self, hash: String) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SETTINGS)?
                .insert(ADMIN_TOKEN_HASH, hash.as_bytes())?;
            Ok(())
        })
        .await
    }

    /// The admin password's Argon2id PHC string, once the admin has set one.
    pub fn admin_password_hash(&self) -> Result<Option<String>, Error> {
        self.read(|tx| {
            let t = tx.open_table(SETTINGS)?;
            let v = t.get(ADMIN_PASSWORD_HASH)?;
            Ok(v.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
        })
    }

    pub async fn set_admin_password_hash(&self, phc: String) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SETTINGS)?
                .insert(ADMIN_PASSWORD_HASH, phc.as_bytes())?;
            Ok(())
        })
        .await
    }

    /// What the webhook has seen (for the setup checklist); empty on a new install.
    pub fn webhook_facts(&self) -> Result<WebhookFacts, Error> {
        self.read(|tx| {
            let t = tx.open_table(SETTINGS)?;
            let v = t.get(WEBHOOK_FACTS)?;
            v.map(|v| dec(v.value(), "webhook facts"))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    pub async fn put_webhook_facts(&self, facts: WebhookFacts) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SETTINGS)?
                .insert(WEBHOOK_FACTS, enc(&facts, "webhook facts")?.as_slice())?;
            Ok(())
        })
        .await
    }
}
