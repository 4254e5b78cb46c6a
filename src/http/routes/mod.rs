//! Handlers, one file per audience: Meta, the admin, flow tools, operators.

pub mod admin;
pub mod backoffice;
pub mod flow;
pub mod oauth;
pub mod ops;
pub mod webhook;
