//! What every handler may use: the use cases' services, and the edge's own
//! state (connections, body budgets, sessions, throttles).

use std::ops::Deref;
use std::sync::Arc;

use ipnet::IpNet;

use super::limits::{BodyBudget, Connections};
use super::password_checks::PasswordChecks;
use super::session::Sessions;
use super::throttle::Throttle;
use crate::usecase::Services;

pub struct AppState {
    /// What the use cases share; `state.store` and the like reach it through `Deref`.
    pub app: Services,
    pub admin_token_hash: String,
    pub max_body_bytes: usize,
    /// The open connections, bounded and shed oldest-idle first.
    pub connections: Arc<Connections>,
    /// Memory for webhook bodies being received, over all connections.
    pub body_budget: BodyBudget,
    /// The same for forms anyone may post (login, Meta's OAuth callback).
    pub form_budget: BodyBudget,
    /// The browser backoffice's sessions and login throttle.
    pub backoffice: Backoffice,
    /// Wrong Bearer tokens (admin token, account API keys) per client address.
    pub api_throttle: Throttle,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<IpNet>,
}

pub struct Backoffice {
    pub sessions: Sessions,
    pub throttle: Throttle,
    /// Argon2id verifications, on threads of their own (19 MiB each).
    pub password_checks: PasswordChecks,
}

/// The edge is the services plus its own state: a handler passes `state`
/// wherever a use case wants the services.
impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.app
    }
}
