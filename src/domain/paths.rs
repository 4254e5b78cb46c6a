//! The gateway's public paths that Meta, customers or the admin are given
//! (CONTRACT §1): each spelled once, here.

/// Meta's webhook: the verify handshake (GET) and every event (POST).
pub const EVENTS: &str = "/plugins/appmixer/whatsapp/events";
/// Where Meta's login comes back (OAuth redirect or the signup page's form).
pub const CALLBACK: &str = "/auth/whatsapp/callback";
/// The Embedded Signup page.
pub const SIGNUP: &str = "/plugins/appmixer/whatsapp/signup";
/// Where Meta sends a phone number's WhatsApp Flows data requests (the
/// Flow's `data_channel_uri`).
pub const FLOWS: &str = "/flows/{phoneNumberId}";
/// Where a customer's connect link points.
pub const CONNECT: &str = "/connect";

/// The Flows data endpoint of one phone number on the gateway's public URL.
pub fn flows(public_url: &str, phone_number_id: &str) -> String {
    public(
        public_url,
        &FLOWS.replace("{phoneNumberId}", phone_number_id),
    )
}

/// `path` on the gateway's public URL (validated without a trailing slash).
pub fn public(public_url: &str, path: &str) -> String {
    format!("{public_url}{path}")
}
