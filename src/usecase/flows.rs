//! The WhatsApp Flows data endpoint, hosted by wabridge (CONTRACT §4.1,
//! docs/flows.md): a phone number's key pair made and its public key given
//! to Meta, and each of Meta's encrypted requests opened, handed to the flow
//! tool as signed plain JSON, and its answer sealed for Meta.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::access::{self, Number, Page, Paging};
use super::blocking;
use super::listeners::check_target;
use super::Services;
use crate::domain::flows::{self, PING_ANSWER};
use crate::domain::ids::WabaId;
use crate::domain::ids::{new_id, new_webhook_secret};
use crate::domain::model::{Account, FlowsEndpoint};
use crate::domain::paths;
use crate::domain::signature::verify_meta;
use crate::domain::time::now_ms;
use crate::error::Error;

/// How long the flow tool has to answer: Meta gives the endpoint about 10 s,
/// and wabridge needs a moment to decrypt and to encrypt around it.
pub const FLOW_TOOL_TIMEOUT: Duration = Duration::from_secs(8);

/// One synchronous, signed POST to a flow tool.
pub struct ToolCall<'a> {
    pub url: &'a str,
    /// The endpoint's `whsec_…` secret, for the Standard Webhooks signature.
    pub secret: &'a str,
    pub webhook_id: &'a str,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// Whatever POSTs to flow tools: the delivery sender in the running server
/// (wired in `app.rs`, as `worker/` may not name the use cases). Answers the
/// body of a 2xx, or why there was none.
pub trait FlowTool: Send + Sync {
    fn exchange<'a>(
        &'a self,
        call: ToolCall<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'a>>;
}

/// What the flow API shows of an endpoint: never the private key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// What goes into the Flow's `data_channel_uri`.
    pub endpoint_url: String,
    pub url: String,
    pub secret: String,
    pub public_key: String,
    pub key_uploaded: bool,
    /// Why Meta did not take the public key, when it did not (PUT only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_upload_error: Option<String>,
}

fn view(app: &Services, endpoint: &FlowsEndpoint, upload_error: Option<String>) -> EndpointView {
    EndpointView {
        endpoint_url: paths::flows(&app.public_url, &endpoint.phone_number_id),
        url: endpoint.url.clone(),
        secret: endpoint.secret.clone(),
        public_key: endpoint.public_key.clone(),
        key_uploaded: endpoint.key_uploaded,
        key_upload_error: upload_error,
    }
}

/// Sends the number's Flows to the flow tool at `url`: the URL guard first,
/// then the key pair (made once, kept across changes of URL, as is the
/// secret), then the public key uploaded to Meta. Meta refusing the upload
/// still stores the endpoint, with `keyUploaded: false` and Meta's reason, so
/// that the next PUT tries again with the same key.
pub async fn configure(
    app: &Services,
    account: &Account,
    number: &Number,
    url: &str,
) -> Result<EndpointView, Error> {
    let url = check_target(&app.guard, url.trim()).await?;
    let phone = number.id().to_string();
    let mut endpoint = match app.store.flows_endpoint(&phone)? {
        // Two accounts may hold one WABA (two people connected it): the
        // endpoint, its secret and its key are the first one's.
        Some(known) if known.account_id != account.id => {
            return Err(Error::Conflict(format!(
                "phone number {phone} has a Flows endpoint set by another account"
            )))
        }
        Some(known) => known,
        None => {
            let started = Instant::now();
            let pair = blocking(|| flows::generate_key_pair(&mut getrandom::SysRng)).await?;
            tracing::info!(phone_number = %phone, ms = started.elapsed().as_millis() as u64, "Flows key pair generated");
            let new = FlowsEndpoint {
                phone_number_id: phone.clone(),
                account_id: account.id.clone(),
                waba_id: number.waba().to_string(),
                url: url.clone(),
                secret: new_webhook_secret(),
                private_key: pair.private_pem,
                public_key: pair.public_pem,
                key_uploaded: false,
                created_at: now_ms(),
            };
            app.store.add_flows_endpoint(new).await?
        }
    };
    endpoint.url = url;
    endpoint.account_id = account.id.clone();
    endpoint.waba_id = number.waba().to_string();
    let uploaded = access::post(
        app,
        account,
        format!("{phone}/whatsapp_business_encryption"),
        json!({"business_public_key": endpoint.public_key}),
    )
    .await;
    let upload_error = match uploaded {
        Ok(_) => None,
        Err(e @ (Error::Meta(_) | Error::MetaUnreachable(_))) => Some(e.to_string()),
        Err(e) => return Err(e),
    };
    endpoint.key_uploaded = upload_error.is_none();
    app.store.put_flows_endpoint(endpoint.clone()).await?;
    tracing::info!(phone_number = %phone, account = %account.id, key_uploaded = endpoint.key_uploaded, "Flows endpoint set");
    Ok(view(app, &endpoint, upload_error))
}

/// The WABA's Flows, as Meta lists them, following its paging.
pub async fn list(
    app: &Services,
    account: &Account,
    waba: &WabaId,
    paging: Paging,
) -> Result<Page, Error> {
    let fields = "id,name,status,categories,validation_errors";
    let query = vec![("fields".to_string(), fields.to_string())];
    access::paged(app, account, format!("{waba}/flows"), query, paging).await
}

/// The number's endpoint, if it has one and `account` set it.
pub fn get(app: &Services, account: &Account, number: &Number) -> Result<EndpointView, Error> {
    let endpoint = app
        .store
        .flows_endpoint(number.id().as_str())?
        .filter(|e| e.account_id == account.id)
        .ok_or(Error::NotFound("Flows endpoint"))?;
    Ok(view(app, &endpoint, None))
}

/// Stops sending the number's Flows anywhere; its key pair goes with it.
pub async fn remove(app: &Services, account: &Account, number: &Number) -> Result<(), Error> {
    if !app
        .store
        .delete_flows_endpoint(number.id().to_string(), account.id.clone())
        .await?
    {
        return Err(Error::NotFound("Flows endpoint"));
    }
    tracing::info!(phone_number = %number.id(), "Flows endpoint removed");
    Ok(())
}

/// One of Meta's data requests for `phone_number_id`: Meta's signature, then
/// the request opened, then answered (a ping by wabridge, the rest by the
/// flow tool). Returns the base64 text Meta takes as the answer.
pub async fn exchange(
    app: &Services,
    phone_number_id: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> Result<String, Error> {
    let app_secret = app.settings().client_secret;
    if app_secret.is_empty() {
        return Err(Error::NotConfigured(
            "no clientSecret is configured yet, so Meta's signature cannot be checked",
        ));
    }
    verify_meta(&body, signature, &app_secret).map_err(Error::FlowSignature)?;
    let endpoint = app
        .store
        .flows_endpoint(phone_number_id)?
        .ok_or(Error::NotFound("Flows endpoint"))?;
    let private_key = endpoint.private_key.clone();
    // RSA decryption takes milliseconds of CPU: off the async workers.
    let opened = blocking(move || flows::open(&private_key, &body)).await?;
    flows::check_flow_token_signature(&opened.request, &app_secret)?;
    if opened.is_ping() {
        return opened.seal(PING_ANSWER.as_bytes());
    }
    let sent = flows::tool_body(&opened.request, phone_number_id, now_ms());
    let webhook_id = new_id("flx");
    let answer = app
        .flow_tool
        .exchange(ToolCall {
            url: &endpoint.url,
            secret: &endpoint.secret,
            webhook_id: &webhook_id,
            body: sent.to_string().into_bytes(),
            timeout: FLOW_TOOL_TIMEOUT,
        })
        .await
        .map_err(Error::FlowTool)?;
    // Only whether it is JSON matters: nothing of it is built.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&answer).is_err() {
        return Err(Error::FlowTool("its 2xx answer is not JSON".into()));
    }
    opened.seal(&answer)
}
