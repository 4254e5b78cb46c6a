//! `POST /api/v1/admin/backup`: a consistent copy of the database while the
//! server runs, answered as one redb file (`application/octet-stream`).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use crate::domain::ids::new_id;
use crate::error::Error;
use crate::http::auth::require_admin;
use crate::http::response::{self, Resp};
use crate::http::AppState;

pub async fn backup(state: &AppState, req: Request<Incoming>) -> Result<Resp, Error> {
    require_admin(state, &req.into_parts().0)?;
    let store = state.store.clone();
    // The copy is written next to the database (same filesystem, inside the
    // service's sandbox), read back, and removed.
    let tmp = store
        .dir()
        .join(format!("{}.backup-tmp.redb", new_id("bak")));
    let (summary, bytes) = tokio::task::spawn_blocking(move || {
        let result = store.snapshot_to(&tmp).and_then(|summary| {
            std::fs::read(&tmp)
                .map(|b| (summary, b))
                .map_err(|e| Error::Storage(format!("cannot read the copy back: {e}")))
        });
        let _ = std::fs::remove_file(&tmp);
        result
    })
    .await
    .map_err(|e| Error::Storage(format!("the backup did not finish: {e}")))??;
    tracing::info!(
        bytes = bytes.len(),
        events = summary.rows_of("events"),
        "backup taken"
    );
    Ok(response::with_type(
        StatusCode::OK,
        "application/octet-stream",
        bytes,
    ))
}
