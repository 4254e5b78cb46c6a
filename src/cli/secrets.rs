//! `wabridge secrets rotate-key`: re-encrypts every stored secret (app secret,
//! account tokens, listener secrets) under a new key, in one transaction, and
//! puts the new key file (0600, owned like the old one) in place of the old.
//!
//! The server keeps the key in memory, so it must be stopped first: a running
//! one holds the database and the rotation says so. Backups taken before the
//! rotation still need the old key.

use std::process::ExitCode;

use crate::config::ServeArgs;
use crate::store;

pub fn rotate_key(args: &ServeArgs) -> ExitCode {
    let key = store::locate_key(&args.data_dir, args.secrets_key.as_deref());
    let db = args.data_dir.join("wabridge.redb");
    match store::rotate_key(&db, &key) {
        Ok(rotated) => {
            let done = rotated.resealed;
            println!(
                "rotated the secrets key: re-encrypted {} app secret, {} account token(s) and {} listener secret(s), with {} Flows endpoint key(s), in {}; the new key is in {}",
                u8::from(done.app_secret),
                done.accounts,
                done.listeners,
                done.flows_endpoints,
                db.display(),
                rotated.key_at.display()
            );
            println!(
                "keep a copy of the new key with your backups; backups taken before now need the old key"
            );
            // Done all the same: the secrets are under the new key.
            for step in &rotated.unfinished {
                eprintln!("wabridge: warning: {step}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wabridge: key rotation failed: {e}");
            ExitCode::FAILURE
        }
    }
}
