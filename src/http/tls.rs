//! The TLS side of the listener: the admin's PEM files, or a self-signed
//! certificate generated into the data dir on first start and reused after.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::Error;

pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The generated certificate's files in the data dir, created when missing.
pub fn self_signed(data_dir: &Path, public_host: Option<&str>) -> Result<TlsFiles, Error> {
    let files = TlsFiles {
        cert: data_dir.join("tls-cert.pem"),
        key: data_dir.join("tls-key.pem"),
    };
    if files.cert.exists() && files.key.exists() {
        // Written by an older version with the umask's mode.
        crate::files::private_file(&files.key)?;
        crate::files::private_file(&files.cert)?;
        return Ok(files);
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Some(host) = public_host.filter(|h| !names.iter().any(|n| n == h)) {
        names.push(host.to_string());
    }
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Startup(format!("cannot generate a self-signed certificate: {e}")))?;
    write_private(&files.key, generated.signing_key.serialize_pem().as_bytes())?;
    write_private(&files.cert, generated.cert.pem().as_bytes())?;
    tracing::info!(cert = %files.cert.display(), "generated a self-signed TLS certificate");
    Ok(files)
}

/// Whole or not at all, 0600, on disk: the pair is reused at every later
/// start, so a crash must not leave a truncated key behind (a lone cert or key
/// is regenerated, as both must exist to be reused).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::files::write_private_atomic(path, bytes)
        .map_err(|e| Error::Startup(format!("cannot write {}: {e}", path.display())))
}

pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Startup(format!(
                "cannot read certificate {}: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Startup(format!(
            "no certificate found in {}",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        Error::Startup(format!(
            "cannot read private key {}: {e}",
            files.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Startup(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Startup(format!("the certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
