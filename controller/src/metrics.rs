//! Prometheus metrics in the text exposition format, written by hand (no metrics crate):
//! pool size and usage per pool, allocations, failures by reason, reconcile duration.
//!
//! [`Metrics`] is shared by the kube and standalone layers; [`route`] is what the HTTP
//! endpoint (`serving`) answers.

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

/// The controller's HTTP surface (served by `serving::serve`): `/metrics`, and `/healthz`
/// and `/readyz` for probes.
pub fn route(metrics: &Metrics, path: &str) -> serving::Response {
    match path {
        "/metrics" => serving::Response::metrics(metrics.render()),
        "/healthz" | "/readyz" => serving::Response::text("ok\n"),
        _ => serving::Response::error(404, "not found\n"),
    }
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
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serving::serve(
            listener,
            move |path| route(&m, path),
            serving::Limits::default(),
            stop.clone(),
        ));
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.expect("read");
        stop.cancel();
        server.await.expect("the server stops");
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
        let m = Metrics::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serving::serve(
            listener,
            move |path| route(&m, path),
            serving::Limits::default(),
            stop.clone(),
        ));
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
        stop.cancel();
        server.await.expect("the server stops");
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
