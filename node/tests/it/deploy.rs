//! The deployment files (`deploy/`) against the real binary. The compose file's structure is
//! checked by `deploy/check.py` (no container engine runs here); this checks what needs a live
//! node: every metric the Grafana dashboard queries is one the node exports.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde_json::Value;

use crate::support::{http_get, DevNode};

const DASHBOARD: &str = include_str!("../../../deploy/grafana/dashboards/taksa.json");

/// Every PromQL text in the dashboard: panel targets' `expr` and the variables' queries.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains("taksa_") => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The `taksa_…` metric names a PromQL text mentions.
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = query;
    while let Some(at) = rest.find("taksa_") {
        let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let tail = &rest[at..];
        let len = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        if before_ok {
            names.push(tail[..len].to_owned());
        }
        rest = &tail[len..];
    }
    names
}

/// The series names a `/metrics` page can hold: each family's name with the suffixes its type
/// gives its samples (OpenMetrics: a counter's samples end in `_total`, a histogram's in
/// `_bucket`, `_sum` and `_count`). A family with no samples yet still has its `# TYPE` line.
fn exported_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(family), Some(kind)) = (parts.next(), parts.next()) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_grafana_dashboard_queries_is_on_a_live_nodes_metrics_page() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut texts = Vec::new();
    queries(&dashboard, &mut texts);
    let used: BTreeSet<String> = texts.iter().flat_map(|q| metric_names(q)).collect();
    assert!(used.len() >= 15, "the dashboard queries only {used:?}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&tmp.path().join("data"), 100);
    let addr: SocketAddr = node.url.trim_start_matches("http://").parse().expect("address");
    let page = http_get(addr, "/metrics").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let exported = exported_names(&page);
    let missing: Vec<&String> = used.difference(&exported).collect();
    assert!(missing.is_empty(), "the dashboard queries {missing:?}, which the node does not export:\n{page}");
}

#[test]
fn metric_names_are_read_from_promql_and_from_type_lines() {
    assert_eq!(
        metric_names("sum(rate(taksa_rpc_requests_total{method=~\"$m\"}[5m])) / xtaksa_no + taksa_peers"),
        ["taksa_rpc_requests_total", "taksa_peers"]
    );
    let page = "# TYPE taksa_peers gauge\n# TYPE taksa_rpc_requests counter\n# TYPE taksa_rpc_request_duration_seconds histogram\n";
    let names = exported_names(page);
    for n in ["taksa_peers", "taksa_rpc_requests_total", "taksa_rpc_request_duration_seconds_bucket"] {
        assert!(names.contains(n), "{n}");
    }
    assert!(!names.contains("taksa_rpc_requests"), "a counter's samples end in _total");
}
