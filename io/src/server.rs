//! A bounded HTTP/1.1 server over TLS (or plain HTTP on loopback) with
//! graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{read_certificates, tls_error, HttpError, ListenOptions, Result};

/// Response bodies: whole or streamed, with IO errors that cut the
/// response off.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A streamed body fed through a channel: each `Ok` chunk is sent as it
/// comes; an `Err` cuts the response off (the client sees an incomplete
/// body, never a complete wrong one). Send from blocking code with
/// `blocking_send`.
pub fn channel_body(capacity: usize) -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
    (tx, ChannelBody(rx).boxed())
}

struct ChannelBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<hyper::body::Frame<Bytes>, std::io::Error>>>
    {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What answers requests: the request and the peer's address in, a
/// response out.
pub type Handler = Arc<
    dyn Fn(Request<Incoming>, SocketAddr) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>
        + Send
        + Sync,
>;

/// A [`Handler`] that answers each request with `answer`, given a handle
/// on the shared `state` (typically an `async fn` taking `self: Arc<Self>`).
pub fn handler<T, F, Fut>(state: Arc<T>, answer: F) -> Handler
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>, Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |req, peer| Box::pin(answer(Arc::clone(&state), req, peer)))
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    opts: ListenOptions,
}

fn tls_acceptor(files: &crate::TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    let certs = read_certificates(&files.cert)?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(&files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&files.cert, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(&files.key, format!("does not fit the certificate: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Server {
    /// Check the options, load the TLS files and bind. Must run inside a
    /// tokio runtime.
    pub async fn bind(opts: ListenOptions) -> Result<Self> {
        opts.check()?;
        let tls = opts.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener = TcpListener::bind(opts.addr)
            .await
            .map_err(|source| HttpError::Bind {
                addr: opts.addr,
                source,
            })?;
        Ok(Self {
            listener,
            tls,
            opts,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|source| HttpError::Bind {
                addr: self.opts.addr,
                source,
            })
    }

    /// Serve until `shutdown` resolves, then stop accepting and give the
    /// requests in flight up to the grace period.
    pub async fn run(self, handler: Handler, shutdown: impl Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(self.opts.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                () = &mut shutdown => break,
                p = Arc::clone(&permits).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                a = self.listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let handler = Arc::clone(&handler);
            let service = hyper::service::service_fn(move |req| {
                let h = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(h(req, peer).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(self.opts.header_timeout);
            match &self.tls {
                None => {
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        let _ = conn.await;
                        drop(permit);
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let timeout = self.opts.header_timeout;
                    // The handshake runs on its own task, bounded in time,
                    // so a slow client holds only its own permit.
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(_)) | Err(_) => return,
                        };
                        let _ = watcher
                            .watch(http.serve_connection(TokioIo::new(tls), service))
                            .await;
                        drop(permit);
                    });
                }
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(self.opts.grace, graceful.shutdown()).await;
    }
}

/// A bad request's response.
pub fn bad_request(why: impl Into<String>) -> Response<Body> {
    text(StatusCode::BAD_REQUEST, why)
}

/// Read a request body of at most `max` bytes (413 beyond it).
pub async fn read_body(
    req: Request<Incoming>,
    max: usize,
) -> std::result::Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(req.into_body(), max)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max} bytes"),
        )),
        Err(e) => Err(bad_request(format!("reading the body: {e}"))),
    }
}
