//! What Meta tells about the assets a token reaches, asked at connect time:
//! the WABAs of the user's businesses, and which business portfolio owns each
//! (Meta sends some `account_update` events to the portfolio, not the WABA).

use super::{next_cursor, AccountToken, Graph, MetaError};
use crate::domain::connect::{owned_wabas, owner_business, wabas_from_businesses};
use crate::error::Error;

/// Businesses read at most (pages of 50): far more than one person belongs to.
const BUSINESS_PAGES: usize = 20;

/// WABAs whose owner is asked for at most, one Graph call each.
const OWNER_LOOKUPS: usize = 20;

/// The owning business of each WABA not in `known`, asked of Meta one by one.
/// A WABA Meta says nothing about is still connected: only business-level
/// events (entry.id a portfolio) miss it, and they name the WABA when it matters.
pub fn owners_of(
    graph: &Graph,
    token: &AccountToken<'_>,
    wabas: &[String],
    known: &[(String, String)],
) -> Vec<(String, String)> {
    let unknown = wabas
        .iter()
        .filter(|w| !known.iter().any(|(_, k)| k == *w))
        .take(OWNER_LOOKUPS);
    let mut out = Vec::new();
    for waba in unknown {
        match graph.get(waba, token, &[("fields", "owner_business_info")]) {
            Ok(node) => out.extend(owner_business(&node).map(|b| (b, waba.clone()))),
            Err(e) => {
                tracing::warn!(%waba, error = %e, "could not read the WABA's owning business")
            }
        }
    }
    out
}

/// Plain OAuth tokens do not name the WABA picked; the businesses the user
/// belongs to list the WABAs they own and manage for clients, and own which.
pub fn businesses_wabas(
    graph: &Graph,
    token: &AccountToken<'_>,
) -> (Vec<String>, Vec<(String, String)>, Option<MetaError>) {
    let fields = "id,name,owned_whatsapp_business_accounts.limit(100){id,name},client_whatsapp_business_accounts.limit(100){id,name}";
    let mut wabas: Vec<String> = Vec::new();
    let mut owners = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..BUSINESS_PAGES {
        let mut query = vec![("fields", fields), ("limit", "50")];
        if let Some(cursor) = &after {
            query.push(("after", cursor));
        }
        let answer = match graph.get("me/businesses", token, &query) {
            Ok(answer) => answer,
            Err(Error::Meta(e)) if wabas.is_empty() => return (wabas, owners, Some(e)),
            Err(e) => {
                // What the earlier pages found is still worth connecting.
                tracing::warn!(error = %e, found = wabas.len(), "could not list the user's businesses");
                break;
            }
        };
        for id in wabas_from_businesses(&answer) {
            if !wabas.contains(&id) {
                wabas.push(id);
            }
        }
        owners.extend(owned_wabas(&answer));
        after = next_cursor(&answer);
        if after.is_none() {
            break;
        }
    }
    (wabas, owners, None)
}
