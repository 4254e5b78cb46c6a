//! Backoffice sessions, in memory: a restart logs the admin out, which is
//! cheap to redo and keeps session ids off the disk.
//!
//! A session starts anonymous when the login page is shown (so the login form has
//! a CSRF token too) and is replaced by a new one, with a new id and a new CSRF
//! token, when the admin logs in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::ids::{random_bytes, token_hash};

/// A logged-in session ends after this long whatever the activity.
const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A login page left open longer than this needs a reload.
const ANONYMOUS_IDLE: Duration = Duration::from_secs(30 * 60);
/// More sessions than this are only possible by someone fetching the login page
/// in a loop; anonymous ones are dropped first.
const MAX_SESSIONS: usize = 10_000;

/// A message shown once on the next page: the outcome of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
    /// A value to copy that is shown this once (a new API key, a connect link).
    pub secret: Option<String>,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Flash {
        Flash {
            ok: true,
            message: message.into(),
            secret: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Flash {
        Flash {
            ok: false,
            message: message.into(),
            secret: None,
        }
    }

    pub fn with_secret(mut self, secret: String) -> Flash {
        self.secret = Some(secret);
        self
    }
}

struct Session {
    csrf: String,
    admin: bool,
    created_ms: u64,
    last_seen_ms: u64,
    flash: Option<Flash>,
}

/// What a handler learns about the caller's session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub csrf: String,
    pub admin: bool,
}

pub struct Sessions {
    /// Keyed by the SHA-256 of the session id, so the map never holds a usable id.
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
}

/// 128 random bits, URL-safe.
fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(16))
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Sessions {
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
        }
    }

    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// A session for the login form, not logged in.
    pub fn start_anonymous(&self, now_ms: u64) -> SessionInfo {
        self.insert(false, now_ms)
    }

    /// Logs in: the old session (if any) is dropped and a new id is issued.
    pub fn login(&self, old_id: Option<&str>, now_ms: u64) -> SessionInfo {
        if let Some(old) = old_id {
            self.end(old);
        }
        self.insert(true, now_ms)
    }

    pub fn end(&self, id: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&token_hash(id));
        }
    }

    /// The live session with this id; expired ones are removed. `touch` resets its
    /// idle clock: a request the admin made, not one a page makes by itself.
    pub fn get(&self, id: &str, now_ms: u64, touch: bool) -> Option<SessionInfo> {
        let key = token_hash(id);
        let mut map = self.map.lock().ok()?;
        let s = map.get_mut(&key)?;
        if self.expired(s, now_ms) {
            map.remove(&key);
            return None;
        }
        if touch {
            s.last_seen_ms = now_ms;
        }
        Some(SessionInfo {
            id: id.to_string(),
            csrf: s.csrf.clone(),
            admin: s.admin,
        })
    }

    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Ok(mut map) = self.map.lock() {
            if let Some(s) = map.get_mut(&token_hash(id)) {
                s.flash = Some(flash);
            }
        }
    }

    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        let mut map = self.map.lock().ok()?;
        map.get_mut(&token_hash(id))?.flash.take()
    }

    fn expired(&self, s: &Session, now_ms: u64) -> bool {
        let idle = if s.admin { self.idle } else { ANONYMOUS_IDLE };
        now_ms.saturating_sub(s.last_seen_ms) > ms(idle)
            || now_ms.saturating_sub(s.created_ms) > ms(ABSOLUTE_LIFETIME)
    }

    fn insert(&self, admin: bool, now_ms: u64) -> SessionInfo {
        let id = new_secret();
        let csrf = new_secret();
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_SESSIONS {
                map.retain(|_, s| !self.expired(s, now_ms));
            }
            if map.len() >= MAX_SESSIONS {
                map.retain(|_, s| s.admin);
            }
            map.insert(
                token_hash(&id),
                Session {
                    csrf: csrf.clone(),
                    admin,
                    created_ms: now_ms,
                    last_seen_ms: now_ms,
                    flash: None,
                },
            );
        }
        SessionInfo { id, csrf, admin }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_issues_a_new_id_and_csrf_token() {
        let s = Sessions::new(Duration::from_secs(60));
        let anon = s.start_anonymous(0);
        assert_eq!(URL_SAFE_NO_PAD.decode(&anon.id).unwrap().len(), 16);
        assert!(!s.get(&anon.id, 1, true).unwrap().admin);
        let admin = s.login(Some(&anon.id), 2);
        assert_ne!(admin.id, anon.id);
        assert_ne!(admin.csrf, anon.csrf);
        assert!(s.get(&anon.id, 3, true).is_none(), "the old id is dead");
        assert!(s.get(&admin.id, 3, true).unwrap().admin);
    }

    #[test]
    fn an_idle_session_expires_and_activity_keeps_it() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.login(None, 0);
        assert!(s.get(&a.id, 50_000, true).is_some());
        assert!(
            s.get(&a.id, 100_000, true).is_some(),
            "seen at 50 s, so alive at 100 s"
        );
        assert!(s.get(&a.id, 170_000, true).is_none());
        assert!(
            s.get(&a.id, 100_001, true).is_none(),
            "removed once expired"
        );
    }

    #[test]
    fn requests_a_page_makes_by_itself_do_not_keep_it_alive() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.login(None, 0);
        assert!(s.get(&a.id, 50_000, false).is_some());
        assert!(s.get(&a.id, 61_000, false).is_none());
    }

    #[test]
    fn no_session_outlives_the_absolute_lifetime() {
        let s = Sessions::new(Duration::from_secs(24 * 3600));
        let a = s.login(None, 0);
        for hour in 1..=12 {
            assert!(
                s.get(&a.id, hour * 3_600_000, true).is_some(),
                "hour {hour}"
            );
        }
        assert!(s.get(&a.id, 13 * 3_600_000, true).is_none());
    }

    #[test]
    fn flash_is_shown_once() {
        let s = Sessions::new(Duration::from_secs(60));
        let a = s.login(None, 0);
        s.set_flash(&a.id, Flash::ok("saved"));
        assert_eq!(s.take_flash(&a.id), Some(Flash::ok("saved")));
        assert_eq!(s.take_flash(&a.id), None);
    }
}
