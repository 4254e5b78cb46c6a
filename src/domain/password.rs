//! The admin password: Argon2id with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1), stored as a PHC string.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::ids::random_bytes;
use crate::error::Error;

pub const MIN_LENGTH: usize = 12;
/// Hashing cost grows with the input; nobody types more than this.
pub const MAX_LENGTH: usize = 1024;

// argon2's errors are `std::error::Error` only with its `std` feature, which
// we leave off: their text is the cause kept.
fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(19_456, 2, 1, None)
        .map_err(|e| Error::internal("argon2 parameters", e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the length rules, then hashes. Slow on purpose: run it off the async workers.
pub fn hash(password: &str) -> Result<String, Error> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_LENGTH} characters long"),
        ));
    }
    if password.len() > MAX_LENGTH {
        return Err(Error::invalid(
            "password",
            format!("must be at most {MAX_LENGTH} bytes long"),
        ));
    }
    let salt = SaltString::encode_b64(&random_bytes(16))
        .map_err(|e| Error::internal("password salt", e.to_string()))?;
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("password hash", e.to_string()))
}

/// True when `password` matches the stored PHC string. An unreadable hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LENGTH {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The stored string carries its own parameters, so verification uses them.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_owasp_parameters_and_verifies() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash("elevenchars"), Err(Error::Invalid { .. })));
        assert!(hash(&"x".repeat(MAX_LENGTH + 1)).is_err());
    }
}
