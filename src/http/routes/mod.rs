//! Handlers, one file per audience and concern: Meta, the admin, flow tools
//! (listeners, numbers and templates, messages, media), operators.

mod access;
pub mod admin;
pub mod flow;
pub mod media;
pub mod messages;
pub mod numbers;
pub mod ops;
pub mod webhook;
