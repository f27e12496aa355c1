//! A small HTTPS client (tokio-rustls + hyper, HTTP/1.1 or HTTP/2) used by the tests and the
//! load benchmark to talk to the webhook over real TLS, trusting a given CA.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Which HTTP version to offer via ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("bad CA: {0}")]
    Ca(String),
}

/// A client configuration trusting `ca_pem` only.
pub fn tls_config(ca_pem: &str, proto: Proto) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| ClientError::Ca(e.to_string()))?;
        roots.add(c)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Full handshakes every time, so `server_cert` is what the server presents now (a resumed
    // TLS 1.3 session would report the certificate of the original handshake).
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg.alpn_protocols = match proto {
        Proto::H1 => vec![b"http/1.1".to_vec()],
        Proto::H2 => vec![b"h2".to_vec()],
    };
    Ok(Arc::new(cfg))
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One TLS connection. HTTP/2 connections can be cloned to multiplex requests.
pub struct Conn {
    sender: Sender,
    /// DER of the server's leaf certificate as presented in this handshake.
    pub server_cert: Vec<u8>,
    /// ALPN protocol negotiated.
    pub alpn: Option<Vec<u8>>,
    host: String,
}

/// Connects to `addr` presenting SNI `server_name`.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<Conn, ClientError> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| ClientError::Ca(format!("bad server name: {e}")))?;
    let tls = TlsConnector::from(cfg).connect(name, tcp).await?;
    let (_, session) = tls.get_ref();
    let server_cert = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    let sender = if alpn.as_deref() == Some(b"h2") {
        let (s, conn) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Sender::H2(s)
    } else {
        let (s, conn) = http1::handshake(io).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Sender::H1(s)
    };
    Ok(Conn {
        sender,
        server_cert,
        alpn,
        host: format!("{server_name}:{}", addr.port()),
    })
}

impl Conn {
    /// Another handle on the same HTTP/2 connection (requests are multiplexed); `None` for
    /// HTTP/1.1, which needs one connection per concurrent request.
    pub fn try_clone(&self) -> Option<Conn> {
        match &self.sender {
            Sender::H2(s) => Some(Conn {
                sender: Sender::H2(s.clone()),
                server_cert: self.server_cert.clone(),
                alpn: self.alpn.clone(),
                host: self.host.clone(),
            }),
            Sender::H1(_) => None,
        }
    }

    /// POSTs a JSON body; returns status and body.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(u16, Bytes), ClientError> {
        let builder = Request::post(path).header("content-type", "application/json");
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                let req = builder
                    .header("host", self.host.as_str())
                    .body(Full::new(body))?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                let uri = format!("https://{}{path}", self.host);
                let req = Request::post(uri)
                    .header("content-type", "application/json")
                    .body(Full::new(body))?;
                s.send_request(req).await?
            }
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// True when the connection can take another request.
    pub fn is_ready(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => s.is_ready(),
            Sender::H2(s) => s.is_ready(),
        }
    }
}
