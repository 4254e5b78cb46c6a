//! Meta's side: the Graph API client and the error shape Meta answers with.

mod error;
mod graph;

pub use error::{hint_for, MetaError};
pub use graph::{AccountToken, DebugToken, Download, FilePart, Graph, GraphConfig, IssuedToken};
