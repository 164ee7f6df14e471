//! Prometheus metrics in the text exposition format, written by hand (no metrics crate):
//! pool size and usage per pool, allocations, failures by reason, reconcile duration.
//!
//! [`Metrics`] is shared by the kube and standalone layers; [`serve`] answers `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::engine::Engine;

/// Upper bounds (seconds) of the reconcile-duration histogram buckets.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

#[derive(Debug, Default)]
struct Inner {
    pools: BTreeMap<String, (u64, u64)>,
    allocations: u64,
    releases: u64,
    failures: BTreeMap<String, u64>,
    reconciles: BTreeMap<&'static str, Histogram>,
    manifests_skipped: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The controller's metrics; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Inner>>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Counts one new allocation.
    pub fn allocated(&self) {
        self.with(|i| i.allocations += 1);
    }

    /// Counts released addresses.
    pub fn released(&self, n: usize) {
        self.with(|i| i.releases += n as u64);
    }

    /// Counts one failed allocation by its stable cause word.
    pub fn failed(&self, reason: &str) {
        self.with(|i| *i.failures.entry(reason.to_string()).or_default() += 1);
    }

    /// Records one reconcile of `kind` (`service`, `eip`, `standalone`) taking `took`.
    pub fn reconciled(&self, kind: &'static str, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|i| {
            let h = i.reconciles.entry(kind).or_default();
            for (n, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[n] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    /// Standalone: how many manifest documents are skipped now (broken, invalid, duplicate).
    pub fn manifests_skipped(&self, n: usize) {
        self.with(|i| i.manifests_skipped = Some(n as u64));
    }

    /// Refreshes the per-pool gauges from the engine.
    pub fn observe_pools(&self, engine: &Engine) {
        let pools = engine
            .allocator()
            .pools()
            .map(|p| {
                let size = u64::try_from(p.size()).unwrap_or(u64::MAX);
                (p.name().to_string(), (size, p.usage() as u64))
            })
            .collect();
        self.with(|i| i.pools = pools);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "# HELP berth_pool_size Addresses a pool can hand out.\n# TYPE berth_pool_size gauge"
            );
            for (pool, (size, _)) in &i.pools {
                let _ = writeln!(out, "berth_pool_size{{pool=\"{}\"}} {size}", escape(pool));
            }
            let _ = writeln!(
                out,
                "# HELP berth_pool_usage Addresses of a pool in use.\n# TYPE berth_pool_usage gauge"
            );
            for (pool, (_, usage)) in &i.pools {
                let _ = writeln!(out, "berth_pool_usage{{pool=\"{}\"}} {usage}", escape(pool));
            }
            let _ = writeln!(
                out,
                "# HELP berth_allocations_total Addresses allocated to Services.\n# TYPE berth_allocations_total counter\nberth_allocations_total {}",
                i.allocations
            );
            let _ = writeln!(
                out,
                "# HELP berth_releases_total Addresses released by Services.\n# TYPE berth_releases_total counter\nberth_releases_total {}",
                i.releases
            );
            let _ = writeln!(
                out,
                "# HELP berth_allocation_failures_total Failed allocations by reason.\n# TYPE berth_allocation_failures_total counter"
            );
            for (reason, n) in &i.failures {
                let _ = writeln!(
                    out,
                    "berth_allocation_failures_total{{reason=\"{}\"}} {n}",
                    escape(reason)
                );
            }
            if let Some(n) = i.manifests_skipped {
                let _ = writeln!(
                    out,
                    "# HELP berth_manifests_skipped Standalone: manifest documents skipped now (each is logged with its file and line).\n# TYPE berth_manifests_skipped gauge\nberth_manifests_skipped {n}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP berth_reconcile_duration_seconds Time spent in one reconcile.\n# TYPE berth_reconcile_duration_seconds histogram"
            );
            for (kind, h) in &i.reconciles {
                for (n, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "berth_reconcile_duration_seconds_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {}",
                        h.counts[n]
                    );
                }
                let _ = writeln!(
                    out,
                    "berth_reconcile_duration_seconds_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}\nberth_reconcile_duration_seconds_sum{{kind=\"{kind}\"}} {}\nberth_reconcile_duration_seconds_count{{kind=\"{kind}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
            out
        })
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` (and `/healthz`) on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) {
    use tokio::io::AsyncWriteExt;
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request head may come in several segments: read until its end (bounded in
            // size and time), never a single read.
            let Ok(Some(head)) = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut conn))
                .await
                .map(Result::ok)
                .map(Option::flatten)
            else {
                return;
            };
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match path {
                "/metrics" => ("200 OK", metrics.render()),
                "/healthz" | "/readyz" => ("200 OK", "ok\n".to_string()),
                _ => ("404 Not Found", "not found\n".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client gets to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a request head up to its blank line; `None` when the peer closes first or sends more
/// than [`MAX_HEAD`].
async fn read_head(conn: &mut tokio::net::TcpStream) -> std::io::Result<Option<String>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_metrics_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let m = Metrics::default();
        m.allocated();
        let server = tokio::spawn(serve(listener, m));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("read");
        server.abort();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("berth_allocations_total 1"), "{reply}");
    }

    /// Regression: the request line in two segments (as `write!` on a TcpStream sends it)
    /// was answered 404 from the first segment alone.
    #[tokio::test]
    async fn a_request_head_in_pieces_is_read_whole() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve(listener, Metrics::default()));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.set_nodelay(true).expect("nodelay");
        conn.write_all(b"GET ").await.expect("write");
        conn.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        conn.write_all(b"/metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("read");
        server.abort();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    }

    #[test]
    fn renders_every_family() {
        let m = Metrics::default();
        m.allocated();
        m.failed("PoolExhausted");
        m.failed("PoolExhausted");
        m.reconciled("service", Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("berth_allocations_total 1"), "{text}");
        assert!(
            text.contains("berth_allocation_failures_total{reason=\"PoolExhausted\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "berth_reconcile_duration_seconds_bucket{kind=\"service\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "berth_reconcile_duration_seconds_bucket{kind=\"service\",le=\"0.001\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE berth_pool_size gauge\n"), "{text}");
    }
}
