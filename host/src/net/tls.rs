//! Which certificate authorities the host trusts for `wss://` and `https://`.
//!
//! Policy:
//! - The built-in webpki roots (Mozilla's list, compiled in) are always
//!   trusted: no system OpenSSL or certificate store is needed.
//! - Beside them, private CAs from PEM files: `--ca-file` (repeatable),
//!   `SSL_CERT_FILE` (one file) and `SSL_CERT_DIR` (directories separated
//!   by `:`, as OpenSSL reads it). A named file that cannot be read or
//!   holds no certificate is an error at start; in a directory, files that
//!   hold no PEM certificate (OpenSSL's hash links to them, a README) are
//!   skipped.
//! - One client configuration (ring, TLS 1.2 and 1.3) is built at start and
//!   shared by the worker connection, the server API and guest HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::NetError;

/// Builds the client configuration: the built-in roots plus every
/// certificate in `files` and in the files of `dirs`.
pub(super) fn client_config(
    files: &[PathBuf],
    dirs: &[PathBuf],
) -> Result<Arc<rustls::ClientConfig>, NetError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for file in files {
        let certs = read_pem(file)?;
        if certs.is_empty() {
            return Err(NetError::Ca(format!(
                "{} holds no PEM certificate",
                file.display()
            )));
        }
        add(&mut roots, certs, file)?;
    }
    for dir in dirs {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| NetError::Ca(format!("reading the directory {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            // Unreadable or not PEM: not a certificate file, skipped.
            if let Ok(certs) = read_pem(&path) {
                add(&mut roots, certs, &path)?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Ca(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file (other sections, such as keys, are
/// skipped).
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let bytes = std::fs::read(path)
        .map_err(|e| NetError::Ca(format!("reading {}: {e}", path.display())))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| NetError::Ca(format!("{} is not valid PEM: {e}", path.display())))
}

fn add(
    roots: &mut rustls::RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    from: &Path,
) -> Result<(), NetError> {
    for cert in certs {
        roots.add(cert).map_err(|e| {
            NetError::Ca(format!(
                "a certificate in {} cannot be a root: {e}",
                from.display()
            ))
        })?;
    }
    Ok(())
}

/// A hint for a certificate the roots do not vouch for, to append to the
/// TLS error.
pub(super) fn hint(err: &std::io::Error) -> &'static str {
    let unknown_issuer = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            )
        });
    if unknown_issuer {
        "; the server's certificate is not signed by a CA this host trusts: \
         for a private CA give --ca-file, or set SSL_CERT_FILE or SSL_CERT_DIR"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = client_config(std::slice::from_ref(&missing), &[]).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = client_config(std::slice::from_ref(&empty), &[]).unwrap_err();
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let garbled = dir.path().join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(client_config(std::slice::from_ref(&garbled), &[]).is_err());
        // A directory skips what is not a certificate.
        assert!(client_config(&[], &[dir.path().to_path_buf()]).is_ok());
        assert!(client_config(&[], &[missing]).is_err());
    }
}
