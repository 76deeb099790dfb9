//! A `kube::Client` whose HTTP travels over the simulator's TCP, so simulated hosts run the real
//! kube-rs client unchanged.
//!
//! ```no_run
//! # fn main() -> turmoil::Result {
//! use khaos_sim::transport::{self, ClientConfig};
//! let mut sim = turmoil::Builder::new().build();
//! # sim.host("apiserver", || async { Ok(()) });
//! sim.client("candidate-0", async {
//!     // Must be built inside the host: the client spawns a task on the host's runtime.
//!     let client = transport::client(ClientConfig::production("apiserver:6443", "candidate-0"));
//!     let _ = client.apiserver_version().await;
//!     Ok(())
//! });
//! sim.run()
//! # }
//! ```
//!
//! A simulated candidate or observer runs the client `khaos node` runs
//! ([`ClientConfig::production`], from [`khaos_elector::client::PRODUCTION`]): kube-rs's
//! defaults, which wait for an answer as long as the connection lives. A partition drops packets
//! silently, so what ends a hung request in the simulator is what ends it in production: the
//! election's deadlines and the HA services' own bounds. Harness clients (the CAS race, the
//! conformance suite) bound every request ([`ClientConfig::harness`]). kube's base URI layer is
//! applied; connections are dialled by host name through turmoil's DNS.
//!
//! One setting is not modelled: the write timeout. turmoil's writes never block, so a write
//! that a full send buffer holds up, which the write timeout would end, cannot happen here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Uri, header};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::Sleep;
use tower::{BoxError, ServiceBuilder};

/// Settings of a simulated client.
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientConfig {
    /// `host:port` of the API server inside the simulation.
    pub server: String,
    /// The identity sent as User-Agent, which the server records with each commit.
    pub identity: String,
    /// The longest wait for a response's headers (a watch's headers come at once); `None`
    /// waits for ever.
    pub request_timeout: Option<Duration>,
    /// The longest a connection may stay silent while a read is pending; `None` waits for ever.
    pub read_timeout: Option<Duration>,
    /// The longest a TCP connect may take; `None` waits for ever.
    pub connect_timeout: Option<Duration>,
    /// The namespace the client uses by default.
    pub default_namespace: String,
}

impl ClientConfig {
    /// The client `khaos node` runs: `settings` are [`khaos_elector::client::PRODUCTION`]
    /// (kube-rs's defaults, its retries off; the simulated client has no retry layer at all).
    /// Namespace `default`.
    pub fn production(server: impl Into<String>, identity: impl Into<String>) -> ClientConfig {
        ClientConfig::with_settings(server, identity, &khaos_elector::client::PRODUCTION)
    }

    /// A harness client, which must never hang: 10 s request timeout, 295 s read timeout, 5 s
    /// connect timeout, namespace `default`.
    pub fn harness(server: impl Into<String>, identity: impl Into<String>) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            identity: identity.into(),
            request_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(295)),
            connect_timeout: Some(Duration::from_secs(5)),
            default_namespace: "default".into(),
        }
    }

    /// A client with these timeouts (all but the write timeout, which is not modelled).
    pub fn with_settings(
        server: impl Into<String>,
        identity: impl Into<String>,
        settings: &khaos_elector::client::ClientSettings,
    ) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            identity: identity.into(),
            request_timeout: settings.request_timeout,
            read_timeout: settings.read_timeout,
            connect_timeout: settings.connect_timeout,
            default_namespace: "default".into(),
        }
    }

    /// Set the request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.request_timeout = Some(timeout);
        self
    }

    /// Set the read-idle timeout.
    pub fn read_timeout(mut self, timeout: Duration) -> ClientConfig {
        self.read_timeout = Some(timeout);
        self
    }
}

/// A `kube::Client` that talks to `config.server` over simulated TCP.
///
/// Must be called from within a simulation host (it spawns the client's worker on that host's
/// runtime). Panics if `config.server` or `config.identity` cannot be used in a URI or header.
pub fn client(config: ClientConfig) -> kube::Client {
    let base: Uri = format!("http://{}", config.server)
        .parse()
        .unwrap_or_else(|e| panic!("server address {:?} is not host:port: {e}", config.server));
    let user_agent = HeaderValue::from_str(&config.identity)
        .unwrap_or_else(|e| panic!("identity {:?} is not a valid header: {e}", config.identity));
    let connector = Connector {
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
    };
    // The pool judges idle connections by this timer; without it hyper-util reads the wall clock,
    // which would make connection reuse depend on how fast the machine runs the simulation.
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(kube::client::middleware::BaseUriLayer::new(base))
        .map_request(move |mut request: Request<kube::client::Body>| {
            request
                .headers_mut()
                .insert(header::USER_AGENT, user_agent.clone());
            request
        })
        .option_layer(
            config
                .request_timeout
                .map(tower::timeout::TimeoutLayer::new),
        )
        .map_err(BoxError::from)
        .service(http);
    kube::Client::new(service, config.default_namespace)
}

/// A plain hyper client over simulated TCP (for other services in the simulation, such as a
/// blob store), with the same connect and read-idle timeouts and the same wall-clock-free pool
/// as the kube client. Must be called from within a simulation host.
pub fn http_client<B>(
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
) -> hyper_util::client::legacy::Client<Connector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(Connector {
            connect_timeout,
            read_timeout,
        })
}

/// Dials the URI's host and port through turmoil.
#[derive(Clone, Debug)]
pub struct Connector {
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl tower::Service<Uri> for Connector {
    type Response = SimStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SimStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let Connector {
            connect_timeout,
            read_timeout,
        } = self.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::other(format!("no host in {uri}")))?
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let connect = turmoil::net::TcpStream::connect((host, port));
            let stream = match connect_timeout {
                Some(timeout) => tokio::time::timeout(timeout, connect)
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??,
                None => connect.await?,
            };
            Ok(SimStream {
                io: TokioIo::new(stream),
                read_timeout,
                idle: None,
            })
        })
    }
}

/// A simulated TCP stream for hyper, with a read-idle timeout: when a read stays pending for
/// `read_timeout`, it fails with `TimedOut`, which ends the request or watch that waits on it.
pub struct SimStream {
    io: TokioIo<turmoil::net::TcpStream>,
    read_timeout: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
}

impl Connection for SimStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.idle = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let Some(timeout) = this.read_timeout else {
                    return Poll::Pending;
                };
                let idle = this
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match idle.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.idle = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "read timed out",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl Write for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
