//! Handlers, one file per audience: Meta, the admin, flow tools, operators.

pub mod admin;
pub mod backup;
pub mod flow;
pub mod ops;
pub mod webhook;
