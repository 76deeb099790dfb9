//! The blob store as a host of the simulation: a small HTTP service in front of a
//! [`MemoryBlobStore`] (whose seeded faults make it slow, failing or ambiguous), and the
//! [`BlobStore`] nodes use to reach it over simulated TCP, so partitions, latency and lost answers
//! between a node and its state storage are real network events.
//!
//! The protocol: `PUT /{path}` stores the body, `GET /{path}` reads, `DELETE /{path}` removes,
//! `HEAD /{path}` tells whether it exists, `GET /?list={prefix}` lists (one path a line). Errors:
//! 404 not found, 400 invalid path, 503 unavailable (nothing happened), 500 with
//! `x-khaos-outcome: unknown` for an ambiguous write.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use khaos_elector::blob::{BlobError, BlobStore, MemoryBlobStore};

/// The header that marks an answer whose operation may or may not have happened.
const OUTCOME: &str = "x-khaos-outcome";

/// Serve `store` on `port` of the current simulation host, forever.
pub async fn serve(store: MemoryBlobStore, port: u16) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let store = store.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let store = store.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&store, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    store: &MemoryBlobStore,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let list = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("list="))
        .map(str::to_owned);
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return status(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let result = match (&method, list) {
        (&Method::GET, Some(prefix)) => store
            .list(&prefix)
            .await
            .map(|paths| Bytes::from(paths.join("\n"))),
        (&Method::GET, None) => store.get(&path).await,
        (&Method::PUT, None) => store.put(&path, body).await.map(|()| Bytes::new()),
        (&Method::DELETE, None) => store.delete(&path).await.map(|()| Bytes::new()),
        (&Method::HEAD, None) => store
            .exists(&path)
            .await
            .map(|found| Bytes::from(if found { "1" } else { "" })),
        _ => return status(StatusCode::METHOD_NOT_ALLOWED, "unsupported"),
    };
    match result {
        Ok(bytes) if method == Method::HEAD && bytes.is_empty() => {
            status(StatusCode::NOT_FOUND, "")
        }
        Ok(bytes) => Response::new(Full::new(bytes)),
        Err(BlobError::NotFound { .. }) => status(StatusCode::NOT_FOUND, "not found"),
        Err(BlobError::InvalidPath { reason, .. }) => status(StatusCode::BAD_REQUEST, reason),
        Err(BlobError::Ambiguous { .. }) => {
            let mut response = status(StatusCode::INTERNAL_SERVER_ERROR, "outcome unknown");
            response
                .headers_mut()
                .insert(OUTCOME, hyper::header::HeaderValue::from_static("unknown"));
            response
        }
        Err(_) => status(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

fn status(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = code;
    response
}

/// A node's view of the blob store host.
pub struct RemoteBlobs {
    client: hyper_util::client::legacy::Client<crate::transport::Connector, Full<Bytes>>,
    base: String,
    timeout: Duration,
}

impl RemoteBlobs {
    /// Reach the blob store at `host:port`; every operation gets at most `timeout`. Must be
    /// called from within a simulation host.
    pub fn new(host: &str, port: u16, timeout: Duration) -> RemoteBlobs {
        RemoteBlobs {
            client: crate::transport::http_client(Some(timeout), Some(timeout)),
            base: format!("http://{host}:{port}"),
            timeout,
        }
    }

    /// One request. Failing to connect means nothing happened; any other failure after the
    /// request may have been sent means a write's outcome is unknown.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Bytes,
        write: bool,
    ) -> Result<(StatusCode, Bytes), BlobError> {
        if query.is_none() {
            khaos_elector::blob::validate_path(path)?;
        }
        let uri = match query {
            Some(prefix) => format!("{}/?list={prefix}", self.base),
            None => format!("{}/{path}", self.base),
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .expect("a valid request");
        let lost = |path: &str, sent: bool| {
            if write && sent {
                BlobError::Ambiguous {
                    path: path.to_owned(),
                }
            } else {
                BlobError::Unavailable {
                    path: path.to_owned(),
                }
            }
        };
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => return Err(lost(path, true)),
            Ok(Err(error)) => return Err(lost(path, !error.is_connect())),
            Ok(Ok(response)) => response,
        };
        let code = response.status();
        let unknown = response.headers().contains_key(OUTCOME);
        let body = match tokio::time::timeout(self.timeout, response.into_body().collect()).await {
            Ok(Ok(body)) => body.to_bytes(),
            _ => return Err(lost(path, true)),
        };
        match code {
            StatusCode::NOT_FOUND => Err(BlobError::NotFound {
                path: path.to_owned(),
            }),
            c if c.is_success() => Ok((c, body)),
            StatusCode::INTERNAL_SERVER_ERROR if unknown => Err(BlobError::Ambiguous {
                path: path.to_owned(),
            }),
            _ => Err(BlobError::Unavailable {
                path: path.to_owned(),
            }),
        }
    }
}

impl BlobStore for RemoteBlobs {
    fn put<'a>(&'a self, path: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.call(Method::PUT, path, None, bytes, true)
                .await
                .map(|_| ())
        })
    }

    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, BlobError>> {
        Box::pin(async move {
            self.call(Method::GET, path, None, Bytes::new(), false)
                .await
                .map(|(_, body)| body)
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            self.call(Method::DELETE, path, None, Bytes::new(), true)
                .await
                .map(|_| ())
        })
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            match self
                .call(Method::HEAD, path, None, Bytes::new(), false)
                .await
            {
                Ok(_) => Ok(true),
                Err(BlobError::NotFound { .. }) => Ok(false),
                Err(error) => Err(error),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        Box::pin(async move {
            let (_, body) = self
                .call(Method::GET, prefix, Some(prefix), Bytes::new(), false)
                .await?;
            let text = String::from_utf8_lossy(&body);
            Ok(text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect())
        })
    }
}
