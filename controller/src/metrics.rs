//! The controller's Prometheus metrics, kept and encoded by `prometheus-client`: pool size
//! and usage per pool, allocations, releases, failures by reason, reconcile duration, and
//! (standalone) the manifest documents skipped.
//!
//! [`Metrics`] is shared by the kube and standalone layers; [`route`] is what the HTTP
//! endpoint (`serving`) answers. It must not decide anything: it counts what it is told.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::Engine;

/// Upper bounds (seconds) of the reconcile-duration histogram buckets.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Pool {
    pool: String,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The pools' gauges, read from the last observation at each scrape (a pool that is gone
/// is gone from the page, with no window in which the page shows no pools).
#[derive(Debug, Default)]
struct Pools(Mutex<BTreeMap<String, (i64, i64)>>);

impl Collector for Pools {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let pools = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, help, pick) in [
            (
                "berth_pool_size",
                "Addresses a pool can hand out.",
                (|p: &(i64, i64)| p.0) as fn(&(i64, i64)) -> i64,
            ),
            ("berth_pool_usage", "Addresses of a pool in use.", |p| p.1),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (pool, value) in pools.iter() {
                let labels = Pool { pool: pool.clone() };
                ConstGauge::new(pick(value)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    pools: Arc<Pools>,
    allocations: Counter,
    releases: Counter,
    failures: Family<Reason, Counter>,
    reconciles: Family<Kind, Histogram, fn() -> Histogram>,
    manifests_skipped: Gauge,
}

impl Default for Inner {
    fn default() -> Self {
        let mut registry = Registry::default();
        let pools = Arc::new(Pools::default());
        registry.register_collector(Box::new(pools.clone()));
        let allocations = Counter::default();
        registry.register(
            "berth_allocations",
            "Addresses allocated to Services",
            allocations.clone(),
        );
        let releases = Counter::default();
        registry.register(
            "berth_releases",
            "Addresses released by Services",
            releases.clone(),
        );
        let failures = Family::<Reason, Counter>::default();
        registry.register(
            "berth_allocation_failures",
            "Failed allocations by reason",
            failures.clone(),
        );
        let reconciles: Family<Kind, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(reconcile_histogram);
        registry.register(
            "berth_reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconciles.clone(),
        );
        let manifests_skipped = Gauge::default();
        registry.register(
            "berth_manifests_skipped",
            "Standalone: manifest documents skipped now (each is logged with its file and line)",
            manifests_skipped.clone(),
        );
        Self {
            registry,
            pools,
            allocations,
            releases,
            failures,
            reconciles,
            manifests_skipped,
        }
    }
}

/// The controller's metrics; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Metrics {
    /// Counts one new allocation.
    pub fn allocated(&self) {
        self.inner.allocations.inc();
    }

    /// Counts released addresses.
    pub fn released(&self, n: usize) {
        self.inner.releases.inc_by(n as u64);
    }

    /// Counts one failed allocation by its stable cause word.
    pub fn failed(&self, reason: &str) {
        self.inner
            .failures
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Records one reconcile of `kind` (`service`, `eip`, `standalone`) taking `took`.
    pub fn reconciled(&self, kind: &'static str, took: Duration) {
        self.inner
            .reconciles
            .get_or_create(&Kind { kind })
            .observe(took.as_secs_f64());
    }

    /// Standalone: how many manifest documents are skipped now (broken, invalid, duplicate).
    pub fn manifests_skipped(&self, n: usize) {
        self.inner
            .manifests_skipped
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Refreshes the per-pool gauges from the engine. A pool's size is exact up to
    /// `i64::MAX` (a metric is a float on the scraper's side anyway) and clamped beyond.
    pub fn observe_pools(&self, engine: &Engine) {
        let pools = engine
            .allocator()
            .pools()
            .map(|p| {
                let size = i64::try_from(p.size()).unwrap_or(i64::MAX);
                let usage = i64::try_from(p.usage()).unwrap_or(i64::MAX);
                (p.name().to_string(), (size, usage))
            })
            .collect();
        *self
            .inner
            .pools
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = pools;
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
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
                "berth_reconcile_duration_seconds_bucket{le=\"0.005\",kind=\"service\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "berth_reconcile_duration_seconds_bucket{le=\"0.001\",kind=\"service\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE berth_pool_size gauge\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
