//! The gateway's public paths that Meta, customers or the admin are given
//! (CONTRACT §1): each spelled once, here.

/// Meta's webhook: the verify handshake (GET) and every event (POST).
pub const EVENTS: &str = "/plugins/appmixer/whatsapp/events";
/// Where Meta's login comes back (OAuth redirect or the signup page's form).
pub const CALLBACK: &str = "/auth/whatsapp/callback";
/// The Embedded Signup page.
pub const SIGNUP: &str = "/plugins/appmixer/whatsapp/signup";
/// Where a customer's connect link points.
pub const CONNECT: &str = "/connect";

/// `path` on the gateway's public URL (validated without a trailing slash).
pub fn public(public_url: &str, path: &str) -> String {
    format!("{public_url}{path}")
}
