//! Prometheus metrics for `GET /metrics`: the node's figures, read from [`Backend::metrics`] at
//! scrape time, and the server's own counters of JSON-RPC calls.
//!
//! Names follow Substrate's and CometBFT's with a `taksa_` prefix (`taksa_block_height`,
//! `taksa_peers`, ...); `docs/operators.md` lists each with its meaning and labels. Every label
//! value comes from a bounded set: a registered method name (else `unknown`), an outcome, a block
//! status, or a validator of the genesis set.
//!
//! [`Backend::metrics`]: crate::Backend::metrics

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::backend::{NodeMetrics, ValidatorRecord};

/// The media type of the exposition, as prometheus-client's text encoder writes it.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The prefix of every metric name.
const PREFIX: &str = "taksa";

/// The `method` label of a call to a method the server does not have: clients choose method
/// names, so echoing them would let a client create label values without bound.
pub(crate) const UNKNOWN_METHOD: &str = "unknown";

/// Upper bounds of the call duration buckets, in seconds: from a cached read (well under a
/// millisecond) to a call stuck behind a slow disk.
const DURATION_BUCKETS_SECONDS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every metric name as it appears in the exposition (counters with their `_total`, histograms
/// without the `_bucket`/`_sum`/`_count` suffixes); tests check the output and the docs against it.
#[cfg(test)]
pub(crate) const NAMES: &[&str] = &[
    "taksa_block_height",
    "taksa_transactions_finalized_total",
    "taksa_mempool_size",
    "taksa_mempool_bytes",
    "taksa_peers",
    "taksa_consensus_view",
    "taksa_consensus_timeouts_total",
    "taksa_epoch",
    "taksa_validator_set_size",
    "taksa_validator_missed_blocks",
    "taksa_validator_signed_blocks",
    "taksa_storage_bytes",
    "taksa_accounts",
    "taksa_state_cache_entries",
    "taksa_state_cache_bytes",
    "taksa_syncing",
    "taksa_rpc_requests_total",
    "taksa_rpc_request_duration_seconds",
    "taksa_rpc_subscriptions_lagged_total",
];

type MethodLabels = [(&'static str, &'static str); 1];
type CallLabels = [(&'static str, &'static str); 2];
type ValidatorLabels = [(&'static str, String); 2];
type NotificationLabels = [(&'static str, String); 1];

/// Subscriptions closed with a `lagged` notice, by notification method. Made before the
/// method table (the subscriptions count into it) and then shared with [`RpcMetrics`].
#[derive(Clone, Debug, Default)]
pub(crate) struct LaggedCounter(Family<NotificationLabels, Counter>);

impl LaggedCounter {
    /// Counts one subscription told `lagged`; `notification` is one of the server's own
    /// notification method names, never a client's string.
    pub(crate) fn inc(&self, notification: &str) {
        self.0.get_or_create(&[("method", notification.to_owned())]).inc();
    }
}

/// The server's counters of JSON-RPC calls, shared by every connection.
#[derive(Debug)]
pub(crate) struct RpcMetrics {
    /// The registered method names: the only `method` label values besides [`UNKNOWN_METHOD`].
    methods: Arc<HashSet<&'static str>>,
    calls: Family<CallLabels, Counter>,
    durations: Family<MethodLabels, Histogram, fn() -> Histogram>,
    lagged: LaggedCounter,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_SECONDS)
}

impl RpcMetrics {
    /// Counters whose `method` label is one of `methods` or [`UNKNOWN_METHOD`].
    pub(crate) fn new(methods: Arc<HashSet<&'static str>>, lagged: LaggedCounter) -> RpcMetrics {
        RpcMetrics {
            methods,
            calls: Family::default(),
            durations: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            lagged,
        }
    }

    /// The `method` label for a call to `method`.
    pub(crate) fn label(&self, method: &str) -> &'static str {
        self.methods.get(method).copied().unwrap_or(UNKNOWN_METHOD)
    }

    /// Counts one answered call of `method` (a value from [`RpcMetrics::label`]).
    pub(crate) fn record(&self, method: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.calls.get_or_create(&[("method", method), ("outcome", outcome)]).inc();
        self.durations.get_or_create(&[("method", method)]).observe(elapsed.as_secs_f64());
    }

    /// The whole exposition: the call counters, `node`'s figures (validator addresses with
    /// prefix `hrp`), then `# EOF`.
    pub(crate) fn encode(&self, node: NodeMetrics, hrp: &str) -> Result<String, fmt::Error> {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(NodeCollector { node, hrp: hrp.to_owned() }));
        registry.register("rpc_requests", "JSON-RPC calls answered, by method and outcome", self.calls.clone());
        registry.register_with_unit(
            "rpc_request_duration",
            "Time to answer a JSON-RPC call, by method",
            Unit::Seconds,
            self.durations.clone(),
        );
        registry.register(
            "rpc_subscriptions_lagged",
            "Subscriptions closed with a lagged notice because the client stopped reading, by notification method",
            self.lagged.0.clone(),
        );
        let mut out = String::new();
        text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// One scrape's snapshot of the node's figures. The node keeps the totals itself, so they are
/// encoded as they are at scrape time rather than mirrored into live counters.
#[derive(Debug)]
struct NodeCollector {
    node: NodeMetrics,
    hrp: String,
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let n = &self.node;
        let mut heights = encoder.encode_descriptor(
            "block_height",
            "Height of the newest block, by status (head or finalized).",
            None,
            MetricType::Gauge,
        )?;
        for (status, height) in [("head", n.head_height), ("finalized", n.finalized_height)] {
            gauge(height).encode(heights.encode_family(&[("status", status)])?)?;
        }
        let e = &mut encoder;
        counter(e, "transactions_finalized", "Transactions finalized since genesis.", n.txs_finalized_total)?;
        counter(
            e,
            "consensus_timeouts",
            "Views this node left by timeout since it started.",
            n.consensus_timeouts_total,
        )?;
        scalar_gauge(e, "mempool_size", "Transactions waiting in the pool.", None, as_u64(n.mempool_txs))?;
        scalar_gauge(
            e,
            "mempool",
            "Encoded bytes of the pool's transactions.",
            Some(&Unit::Bytes),
            as_u64(n.mempool_bytes),
        )?;
        scalar_gauge(e, "peers", "Connected peers.", None, as_u64(n.peers))?;
        scalar_gauge(e, "consensus_view", "The consensus view this node is in.", None, n.consensus_view)?;
        scalar_gauge(e, "epoch", "The epoch consensus runs: its validator set decides.", None, n.epoch)?;
        let size = u64::try_from(n.validator_set_size).unwrap_or(u64::MAX);
        scalar_gauge(e, "validator_set_size", "Validators in the current epoch's set.", None, size)?;
        scalar_gauge(e, "storage", "Bytes the database takes on disk.", Some(&Unit::Bytes), n.storage_bytes)?;
        scalar_gauge(e, "accounts", "Non-zero accounts in the state after the head.", None, n.accounts)?;
        let cached = e.encode_descriptor(
            "state_cache_entries",
            "Accounts and state-tree nodes held in the state cache (--state-cache-mb).",
            None,
            MetricType::Gauge,
        )?;
        let mut cached = cached;
        for (kind, count) in [("accounts", n.state_cache_accounts), ("nodes", n.state_cache_nodes)] {
            family_gauge(&mut cached, &[("kind", kind)], as_u64(count))?;
        }
        scalar_gauge(
            e,
            "state_cache",
            "Bytes the state cache's tables take.",
            Some(&Unit::Bytes),
            as_u64(n.state_cache_bytes),
        )?;
        scalar_gauge(
            e,
            "syncing",
            "1 while the node is catching up with the network, else 0.",
            None,
            u64::from(n.syncing),
        )?;
        self.validators(&mut encoder)
    }
}

impl NodeCollector {
    fn validators(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let labelled: Vec<(ValidatorLabels, &ValidatorRecord)> = self
            .node
            .validators
            .iter()
            .map(|v| ([("validator", escape_label(&v.name)), ("address", v.address.to_bech32(&self.hrp))], v))
            .collect();
        let mut missed = encoder.encode_descriptor(
            "validator_missed_blocks",
            "Finalized blocks whose certificate lacks the validator's vote.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, v) in &labelled {
            family_gauge(&mut missed, labels, v.missed)?;
        }
        let mut signed = encoder.encode_descriptor(
            "validator_signed_blocks",
            "Finalized blocks whose certificate holds the validator's vote.",
            None,
            MetricType::Gauge,
        )?;
        for (labels, v) in &labelled {
            family_gauge(&mut signed, labels, v.signed)?;
        }
        Ok(())
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), fmt::Error> {
    ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn scalar_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> Result<(), fmt::Error> {
    gauge(value).encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

fn family_gauge(encoder: &mut MetricEncoder, labels: &impl EncodeLabelSet, value: u64) -> Result<(), fmt::Error> {
    gauge(value).encode(encoder.encode_family(labels)?)
}

/// A gauge of `value`; OpenMetrics gauges are signed 64-bit here, so larger values saturate
/// rather than fail the whole scrape.
fn gauge(value: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Escapes a label value as the text format requires (the encoder writes values verbatim, and a
/// validator's name comes from the genesis file).
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use taksa_consensus::{Address, Keypair};

    use super::*;

    fn node() -> NodeMetrics {
        let address = Address::from_public_key(Keypair::from_seed(&[4; 32]).public());
        NodeMetrics {
            head_height: 12,
            finalized_height: 11,
            txs_finalized_total: 40,
            mempool_txs: 2,
            mempool_bytes: 300,
            peers: 5,
            consensus_view: 17,
            epoch: 3,
            validator_set_size: 1,
            consensus_timeouts_total: 1,
            validators: vec![ValidatorRecord {
                name: "v\"0\\\n".to_owned(),
                address,
                signed: 9,
                missed: 2,
                proposed: 4,
                last_signed_height: Some(11),
                last_seen_ms: None,
            }],
            storage_bytes: 4096,
            accounts: 70,
            state_cache_accounts: 60,
            state_cache_nodes: 150,
            state_cache_bytes: 9000,
            syncing: true,
        }
    }

    fn metrics() -> RpcMetrics {
        RpcMetrics::new(Arc::new(["chain_getInfo", "tx_submit"].into_iter().collect()), LaggedCounter::default())
    }

    #[test]
    fn exposition_holds_every_metric_and_ends_with_eof() {
        let lagged = LaggedCounter::default();
        let m = RpcMetrics::new(Arc::new(["chain_getInfo"].into_iter().collect()), lagged.clone());
        m.record(m.label("chain_getInfo"), true, Duration::from_millis(3));
        lagged.inc("events_event");
        let out = m.encode(node(), "tks").expect("encodes");
        for name in NAMES {
            assert!(out.contains(&format!("\n{name}")), "{name} missing from\n{out}");
        }
        assert!(out.ends_with("# EOF\n"), "{out}");
        assert!(out.contains("taksa_block_height{status=\"head\"} 12\n"), "{out}");
        assert!(out.contains("taksa_block_height{status=\"finalized\"} 11\n"), "{out}");
        assert!(out.contains("taksa_transactions_finalized_total 40\n"), "{out}");
        assert!(out.contains("taksa_mempool_size 2\n"), "{out}");
        assert!(out.contains("taksa_mempool_bytes 300\n"), "{out}");
        assert!(out.contains("# UNIT taksa_storage_bytes bytes\n"), "{out}");
        assert!(out.contains("taksa_storage_bytes 4096\n"), "{out}");
        assert!(out.contains("taksa_accounts 70\n"), "{out}");
        assert!(out.contains("taksa_state_cache_entries{kind=\"accounts\"} 60\n"), "{out}");
        assert!(out.contains("taksa_state_cache_entries{kind=\"nodes\"} 150\n"), "{out}");
        assert!(out.contains("taksa_state_cache_bytes 9000\n"), "{out}");
        assert!(out.contains("taksa_syncing 1\n"), "{out}");
        assert!(out.contains("taksa_consensus_timeouts_total 1\n"), "{out}");
        assert!(out.contains("taksa_rpc_subscriptions_lagged_total{method=\"events_event\"} 1\n"), "{out}");
    }

    #[test]
    fn validator_labels_are_escaped() {
        let out = metrics().encode(node(), "tks").expect("encodes");
        let address = node().validators[0].address.to_bech32("tks");
        let labels = format!("{{validator=\"v\\\"0\\\\\\n\",address=\"{address}\"}}");
        assert!(out.contains(&format!("taksa_validator_missed_blocks{labels} 2\n")), "{out}");
        assert!(out.contains(&format!("taksa_validator_signed_blocks{labels} 9\n")), "{out}");
    }

    #[test]
    fn unregistered_method_names_share_one_label() {
        let m = metrics();
        for name in ["eth_call", "x".repeat(300).as_str(), "chain_getInfo\"}"] {
            m.record(m.label(name), false, Duration::from_millis(1));
        }
        let out = m.encode(NodeMetrics::default(), "tks").expect("encodes");
        assert!(out.contains("taksa_rpc_requests_total{method=\"unknown\",outcome=\"error\"} 3\n"), "{out}");
        assert!(out.contains("taksa_rpc_request_duration_seconds_count{method=\"unknown\"} 3\n"), "{out}");
        assert!(!out.contains("eth_call") && !out.contains("xxx"), "{out}");
    }

    #[test]
    fn gauges_saturate_instead_of_failing_the_scrape() {
        let node = NodeMetrics { storage_bytes: u64::MAX, ..NodeMetrics::default() };
        let out = metrics().encode(node, "tks").expect("encodes");
        assert!(out.contains(&format!("taksa_storage_bytes {}\n", i64::MAX)), "{out}");
    }

    #[test]
    fn operator_docs_describe_every_metric() {
        let docs = include_str!("../../docs/operators.md");
        for name in NAMES {
            assert!(docs.contains(&format!("`{name}")), "docs/operators.md lacks {name}");
        }
    }
}
