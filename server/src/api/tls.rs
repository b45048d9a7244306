//! TCP access rules: the API speaks TLS over TCP (rustls through tonic), with client
//! certificates when a client CA is given; plain TCP only with `--insecure` and only on a
//! loopback address. Also the subject of a client certificate, which becomes the actor
//! recorded in the history.

use super::{ApiError, Listen};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use x509_cert::der::Decode;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer subjects are cut (the history keeps the actor of every change).
const MAX_SUBJECT_CHARS: usize = 256;

/// The TLS files from the command line.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

/// Check that `listen` may be served as configured, and load the TLS files: `Some` for
/// TLS, `None` for a unix socket or loopback plain TCP with `insecure`.
pub fn server_config(
    listen: &Listen,
    files: &TlsFiles,
    insecure: bool,
) -> Result<Option<ServerTlsConfig>, ApiError> {
    let refused = |why: String| Err(ApiError::Refused(why));
    let wants_tls = files.cert.is_some() || files.key.is_some() || files.client_ca.is_some();
    match listen {
        Listen::Unix(_) => {
            if wants_tls {
                return refused(format!(
                    "--tls-cert, --tls-key and --tls-client-ca apply to a tcp:// address, but --listen is {listen}; a unix socket is protected by its file permissions (see --socket-group)"
                ));
            }
            if insecure {
                return refused(format!(
                    "--insecure applies to a tcp:// address, but --listen is {listen}; drop it"
                ));
            }
            Ok(None)
        }
        Listen::Tcp(addr) => {
            if wants_tls {
                if insecure {
                    return refused(
                        "--insecure and --tls-cert contradict each other; drop --insecure to serve TLS".into(),
                    );
                }
                return load(files).map(Some);
            }
            if !insecure {
                return refused(format!(
                    "refusing to serve the API over plain TCP on {addr}: give --tls-cert and --tls-key (and --tls-client-ca for client certificates), or use --insecure with a loopback address for local testing"
                ));
            }
            if !addr.ip().is_loopback() {
                return refused(format!(
                    "--insecure allows plain TCP only on a loopback address (127.0.0.1, ::1), but {addr} can be reached from other hosts; use --tls-cert and --tls-key"
                ));
            }
            Ok(None)
        }
    }
}

fn read(flag: &'static str, path: &Path, marker: &str, what: &str) -> Result<Vec<u8>, ApiError> {
    let bytes = std::fs::read(path).map_err(|source| ApiError::TlsFile {
        flag,
        path: path.to_owned(),
        reason: source.to_string(),
    })?;
    // tonic checks the PEM only when the server starts; catch the usual mix-ups here,
    // with a message naming the flag.
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(ApiError::TlsFile {
            flag,
            path: path.to_owned(),
            reason: format!("no {what} in PEM format (a '{marker}' block) found"),
        });
    }
    Ok(bytes)
}

fn load(files: &TlsFiles) -> Result<ServerTlsConfig, ApiError> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        return Err(ApiError::Refused(
            "TLS needs both --tls-cert and --tls-key".into(),
        ));
    };
    let cert = read(
        "--tls-cert",
        cert,
        "-----BEGIN CERTIFICATE-----",
        "certificate",
    )?;
    let key = read("--tls-key", key, "PRIVATE KEY-----", "private key")?;
    let mut config = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = &files.client_ca {
        let ca = read(
            "--tls-client-ca",
            ca,
            "-----BEGIN CERTIFICATE-----",
            "CA certificate",
        )?;
        // With a client CA, tonic requires a client certificate that chains to it.
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    // Build the acceptor once now, so that a certificate or key rustls cannot use stops the
    // daemon before it starts anything, not when the API is about to be served.
    tonic::transport::Server::builder()
        .tls_config(config.clone())
        .map_err(ApiError::Tls)?;
    Ok(config)
}

/// The subject of a DER certificate in RFC 4514 form ("CN=ops-alice,O=example"), cut to a
/// sane length; `None` when the certificate cannot be read.
pub(super) fn subject(der: &[u8]) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let subject = cert.tbs_certificate().subject().to_string();
    Some(subject.chars().take(MAX_SUBJECT_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(s: &str) -> Listen {
        Listen::Tcp(s.parse().unwrap())
    }

    fn message(r: Result<Option<ServerTlsConfig>, ApiError>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn plain_tcp_only_on_loopback_and_only_when_asked() {
        let none = TlsFiles::default();
        assert!(matches!(
            server_config(&Listen::Unix("/run/havip/havipd.sock".into()), &none, false),
            Ok(None)
        ));
        let err = message(server_config(&tcp("10.0.0.1:50051"), &none, false));
        assert!(
            err.contains("refusing to serve the API over plain TCP"),
            "{err}"
        );
        let err = message(server_config(&tcp("127.0.0.1:50051"), &none, false));
        assert!(err.contains("--insecure"), "{err}");
        let err = message(server_config(&tcp("10.0.0.1:50051"), &none, true));
        assert!(err.contains("only on a loopback address"), "{err}");
        let err = message(server_config(&tcp("0.0.0.0:50051"), &none, true));
        assert!(err.contains("only on a loopback address"), "{err}");
        assert!(matches!(
            server_config(&tcp("127.0.0.1:50051"), &none, true),
            Ok(None)
        ));
        assert!(matches!(
            server_config(&tcp("[::1]:50051"), &none, true),
            Ok(None)
        ));
    }

    #[test]
    fn tls_flags_are_checked_against_the_listen_address_and_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: Some(dir.path().join("missing.pem")),
            key: Some(dir.path().join("missing.key")),
            client_ca: None,
        };
        let err = message(server_config(
            &Listen::Unix("/tmp/x.sock".into()),
            &files,
            false,
        ));
        assert!(err.contains("apply to a tcp:// address"), "{err}");
        let err = message(server_config(&tcp("10.0.0.1:1"), &files, true));
        assert!(err.contains("contradict"), "{err}");
        let err = message(server_config(&tcp("10.0.0.1:1"), &files, false));
        assert!(
            err.contains("--tls-cert") && err.contains("missing.pem"),
            "{err}"
        );

        // A key given where the certificate belongs.
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("missing.pem"), key.serialize_pem()).unwrap();
        let err = message(server_config(&tcp("10.0.0.1:1"), &files, false));
        assert!(err.contains("no certificate in PEM format"), "{err}");

        // Markers alone do not make a certificate.
        std::fs::write(
            dir.path().join("missing.pem"),
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("missing.key"), key.serialize_pem()).unwrap();
        let err = message(server_config(&tcp("10.0.0.1:1"), &files, false));
        assert!(err.contains("is not usable"), "{err}");

        let cert = rcgen::CertificateParams::new(vec!["10.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(dir.path().join("missing.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("missing.key"), key.serialize_pem()).unwrap();
        assert!(matches!(
            server_config(&tcp("10.0.0.1:1"), &files, false),
            Ok(Some(_))
        ));
    }

    #[test]
    fn the_subject_reads_like_openssl_rfc2253() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ops-alice");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject(cert.der()).as_deref(),
            Some("CN=ops-alice,O=example")
        );
        assert_eq!(subject(b"not a certificate"), None);
    }
}
