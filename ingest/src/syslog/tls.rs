//! TLS for the syslog TCP listener (RFC 5425): a rustls server configuration from PEM files,
//! checked at start-up so a missing or unreadable file stops the service naming the key.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::settings::SyslogTls;

/// The acceptor for `tls`, or why the files cannot be used.
pub fn acceptor(tls: &SyslogTls) -> Result<TlsAcceptor, String> {
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&tls.certificate_file)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|err| {
                format!(
                    "config key `ingest.syslog.tls.certificate_file`: {} cannot be read as PEM \
                     certificates ({err}): point it at the server's certificate chain",
                    tls.certificate_file.display()
                )
            })?;
    if certificates.is_empty() {
        return Err(format!(
            "config key `ingest.syslog.tls.certificate_file`: {} holds no certificate",
            tls.certificate_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|err| {
        format!(
            "config key `ingest.syslog.tls.key_file`: {} cannot be read as a PEM private key \
             ({err}): point it at the certificate's key (PKCS#8, PKCS#1 or SEC1)",
            tls.key_file.display()
        )
    })?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| {
        builder
            .with_no_client_auth()
            .with_single_cert(certificates, key)
    })
    .map_err(|err| {
        format!(
            "config keys `ingest.syslog.tls.certificate_file` and `key_file`: {err} (the key \
             must belong to the certificate)"
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
