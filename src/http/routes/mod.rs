//! Handlers, one file per audience and concern: Meta, the admin, flow tools
//! (listeners, numbers and templates, messages, media), customers connecting
//! their account, the admin's browser backoffice, operators.

mod access;
pub mod admin;
pub mod backoffice;
pub mod backup;
pub mod flow;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod oauth;
pub mod ops;
mod subscriptions;
pub mod webhook;
