//! Meta's side: the Graph API client, the error shape Meta answers with, and
//! webhook bodies shaped like Meta's (for the simulator).

pub mod discovery;
mod error;
pub mod field_samples;
mod graph;
mod paging;
pub mod samples;

pub use error::{hint_for, MetaError};
pub use graph::{AccountToken, DebugToken, Download, FilePart, Graph, GraphConfig, IssuedToken};
pub use paging::next_cursor;
