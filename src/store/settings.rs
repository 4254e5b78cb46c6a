//! The admin's settings and the admin token's hash.

use super::codec::{dec, enc};
use super::tables::SETTINGS;
use super::Store;
use crate::domain::model::Settings;
use crate::error::Error;

const APP: &str = "app";
const ADMIN_TOKEN_HASH: &str = "admin_token_hash";

impl Store {
    pub fn settings(&self) -> Result<Settings, Error> {
        self.read(|tx| {
            let t = tx.open_table(SETTINGS)?;
            let v = t.get(APP)?;
            v.map(|v| dec(v.value(), "settings"))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    pub async fn put_settings(&self, settings: Settings) -> Result<(), Error> {
        self.write(move |tx| {
            tx.open_table(SETTINGS)?
                .insert(APP, enc(&settings).as_slice())?;
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
}
