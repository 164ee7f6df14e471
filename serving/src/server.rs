//! The server: accept under a connection cap, serve each connection with hyper's HTTP/1
//! under [`Limits`], stop gracefully when told.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{Limits, Response};

/// Serves `route` (path → response) on `listener` within `limits` until `stop` is
/// cancelled; then stops accepting and gives exchanges in flight `limits.grace` to finish.
///
/// Only `GET` and `HEAD` are answered (`405` otherwise); the query string is not part of
/// the path a route sees. One exchange per connection: nothing idles holding a slot.
pub async fn serve<F>(listener: TcpListener, route: F, limits: Limits, stop: CancellationToken)
where
    F: Fn(&str) -> Response + Send + Sync + 'static,
{
    let route = Arc::new(route);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    debug!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let route = route.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let response = answer(route.as_ref(), &limits, &request);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.head_timeout)
            .max_buf_size(limits.max_head.max(8 * 1024))
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let exchange = limits.exchange_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(exchange, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!("connection: {e}"),
                Err(_) => debug!("connection cut off after {exchange:?}"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("exchanges still open after {:?}: dropped", limits.grace);
    }
}

/// The response to one request: the method and size rules, then the route.
fn answer<F>(
    route: &F,
    limits: &Limits,
    request: &Request<Incoming>,
) -> hyper::Response<Full<Bytes>>
where
    F: Fn(&str) -> Response,
{
    let response = if !matches!(*request.method(), Method::GET | Method::HEAD) {
        Response::error(405, "only GET\n")
    } else if body_too_large(request, limits.max_body) {
        Response::error(413, "request body too large\n")
    } else {
        route(request.uri().path())
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = status;
    out.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(response.content_type),
    );
    out
}

/// Whether the request announces a body larger than `max` (a chunked body counts as too
/// large unless bodies are allowed at all: its size is unknown until read).
fn body_too_large(request: &Request<Incoming>, max: u64) -> bool {
    let headers = request.headers();
    if headers.contains_key(TRANSFER_ENCODING) {
        return max == 0;
    }
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > max)
}
