//! TLS for the JS-thread connection: the rustls client settings made from the user's `tls`
//! options, with the same checks as the `redis` crate applies on the runtime path (its
//! `create_rustls_config`): the given `ca` replaces the system trust store, `cert` + `key` are
//! the client identity, `servername` is the name verified (and sent as SNI) instead of the host,
//! and `rejectUnauthorized: false` accepts any certificate (signatures are still checked).
//!
//! The handshake runs on the runtime (`wire::open_stream`), then the rustls session is handed to
//! the JS thread with its socket; the settings are made once per client, so a reconnect resumes
//! the session from rustls's in-memory ticket cache when the server offers one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::core::config::TlsOptions;
use crate::core::Error;

/// The rustls client settings for `t`.
///
/// # Errors
/// `InvalidArgument` when the PEM material cannot be read or the system trust store cannot be
/// loaded (naming which).
pub fn client_config(t: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::arg(format!("tls settings are not usable: {e}")))?;
    let builder = if t.reject_unauthorized {
        builder.with_root_certificates(roots(t)?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    };
    let config = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::arg(format!("tls.cert is not a PEM certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| Error::arg(format!("tls.key is not a PEM private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::arg(format!("tls.cert and tls.key are not usable: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(Error::arg("tls.cert and tls.key must be given together")),
    };
    Ok(Arc::new(config))
}

/// The certificates trusted: `tls.ca` when given (and only those), else the system's.
fn roots(t: &TlsOptions) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match &t.ca {
        Some(ca) => {
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert =
                    cert.map_err(|e| Error::arg(format!("tls.ca is not a PEM certificate: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| Error::arg(format!("tls.ca is not usable: {e}")))?;
            }
        }
        None => {
            let mut found = rustls_native_certs::load_native_certs();
            if let Some(e) = found.errors.pop() {
                return Err(Error::arg(format!(
                    "the system's trusted certificates could not be loaded: {e}"
                )));
            }
            // Unusable system certificates are skipped, as browsers and the crate do.
            store.add_parsable_certificates(found.certs);
        }
    }
    Ok(store)
}

/// The name the server's certificate is checked against (and sent as SNI): `servername` when
/// given, else the host (an IP address is checked against the certificate's IP entries).
///
/// # Errors
/// `InvalidArgument` when the name is neither a DNS name nor an IP address.
pub fn server_name(t: &TlsOptions, host: &str) -> Result<ServerName<'static>, Error> {
    let name = t.servername.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned())
        .map_err(|_| Error::arg(format!("'{name}' is not a valid TLS server name")))
}

/// `rejectUnauthorized: false`: any certificate is accepted, but the handshake's signatures are
/// still verified with it (the connection is encrypted to whoever holds its key).
#[derive(Debug)]
struct AnyCertificate {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_material_is_an_argument_error_naming_the_option() {
        let t = |ca: Option<&[u8]>, cert: Option<&[u8]>, key: Option<&[u8]>| TlsOptions {
            ca: ca.map(<[u8]>::to_vec),
            cert: cert.map(<[u8]>::to_vec),
            key: key.map(<[u8]>::to_vec),
            reject_unauthorized: true,
            ..TlsOptions::default()
        };
        let msg = |o: TlsOptions| match client_config(&o) {
            Err(Error::InvalidArgument(m)) => m,
            Err(e) => panic!("unexpected error {e:?}"),
            Ok(_) => panic!("accepted"),
        };
        assert!(msg(t(None, Some(b"x"), None)).contains("together"));
        assert!(msg(t(None, Some(b"not pem"), Some(b"not pem"))).contains("tls.key"));
        // An empty CA list trusts nothing: accepted here, refused at the handshake.
        assert!(client_config(&t(Some(b""), None, None)).is_ok());
    }

    #[test]
    fn the_name_checked_is_servername_else_the_host() {
        let mut t = TlsOptions::default();
        assert!(matches!(
            server_name(&t, "127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name(&t, "localhost"),
            Ok(ServerName::DnsName(_))
        ));
        t.servername = Some("redis.test".into());
        assert_eq!(
            server_name(&t, "127.0.0.1")
                .map(|n| n.to_str().into_owned())
                .ok(),
            Some("redis.test".to_string())
        );
        t.servername = Some("not a name!".into());
        assert!(server_name(&t, "127.0.0.1").is_err());
    }

    /// Against a real TLS `redis-server`: the handshake and `HELLO 3` run on the runtime, the
    /// session handed over carries on with its socket, and a second connection with the same
    /// settings resumes the TLS session instead of a full handshake.
    #[test]
    fn a_handed_over_session_works_and_a_reconnect_resumes_it() {
        use std::io::{Read, Write};

        let (server, ca) = crate::core::test_server::TestServer::start_tls();
        let t = TlsOptions {
            ca: Some(ca),
            reject_unauthorized: true,
            ..TlsOptions::default()
        };
        let cfg = crate::core::Config::resolve(crate::core::config::Settings {
            host: Some("127.0.0.1".into()),
            port: Some(server.port),
            ..Default::default()
        })
        .expect("settings");
        let node = ("127.0.0.1".to_string(), server.port);
        let config = client_config(&t).expect("config");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let open = || {
            let name = server_name(&t, "127.0.0.1").expect("name");
            let s = rt.block_on(crate::core::wire::open_stream(
                &cfg,
                &node,
                Some((Arc::clone(&config), name)),
            ));
            s.expect("connected over TLS")
        };
        let mut first = open();
        let tls = first.tls.as_mut().expect("a TLS session");
        assert_eq!(tls.handshake_kind(), Some(rustls::HandshakeKind::Full));
        // The handed-over session and socket, used as a blocking pair: one round trip.
        first.tcp.set_nonblocking(false).expect("blocking");
        let mut io = rustls::Stream::new(&mut **tls, &mut first.tcp);
        io.write_all(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n")
            .expect("write");
        let mut reply = [0u8; 8];
        io.read_exact(&mut reply).expect("read");
        assert_eq!(&reply, b"$2\r\nhi\r\n");
        let second = open();
        assert_eq!(
            second.tls.as_ref().and_then(|s| s.handshake_kind()),
            Some(rustls::HandshakeKind::Resumed)
        );
    }
}
