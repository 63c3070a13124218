//! `/metrics` in the Prometheus text format: per route, the clients it
//! holds and which handler version serves it since when.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use super::endpoint::Endpoint;
use crate::runtime::metrics::{ClusterSnapshot, Snapshot, TIME_BUCKETS};

/// Renders the metrics of every `(route, endpoint)`.
pub fn render(routes: &[(String, Endpoint)]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, value: &dyn Fn(&Endpoint) -> (String, String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (route, endpoint) in routes {
            let (extra, value) = value(endpoint);
            let handler = endpoint.handler().name();
            let _ =
                writeln!(out, "{name}{{route=\"{}\",handler=\"{}\"{extra}}} {value}", escape(route), escape(handler));
        }
    };
    family("ws_host_clients", "Connected clients, authenticated or not.", &|e| {
        (String::new(), e.handler().registry().len().to_string())
    });
    family("ws_host_authenticated_clients", "Connected clients that passed auth.", &|e| {
        (String::new(), e.handler().registry().authenticated_len().to_string())
    });
    family("ws_host_handler_version", "The version serving the route: 1 at load, plus one per swap.", &|e| {
        let version = e.handler().version();
        (format!(",digest=\"{}\"", version.digest), version.number.to_string())
    });
    family("ws_host_handler_loaded_timestamp_seconds", "When the serving version was loaded or swapped in.", &|e| {
        let loaded = e.handler().version().loaded_at.duration_since(UNIX_EPOCH).unwrap_or_default();
        (String::new(), format!("{:.3}", loaded.as_secs_f64()))
    });
    counters(&mut out, routes);
    out
}

/// The counters each handler keeps, one family at a time.
fn counters(out: &mut String, routes: &[(String, Endpoint)]) {
    let snapshots: Vec<(String, String, Snapshot)> =
        routes.iter().map(|(route, e)| (escape(route), escape(e.handler().name()), e.handler().metrics())).collect();
    let mut by_label =
        |name: &str, help: &str, kind: &str, label: &str, values: &dyn Fn(&Snapshot) -> Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (route, handler, snapshot) in &snapshots {
                for (value_label, value) in values(snapshot) {
                    let label =
                        if label.is_empty() { String::new() } else { format!(",{label}=\"{}\"", escape(&value_label)) };
                    let _ = writeln!(out, "{name}{{route=\"{route}\",handler=\"{handler}\"{label}}} {value}");
                }
            }
        };
    by_label("ws_host_events_in_total", "Events handed to the handler, by event name.", "counter", "event", &|s| {
        s.events_in.iter().map(|(k, v)| (k.clone(), *v)).collect()
    });
    by_label(
        "ws_host_events_out_total",
        "Events sent to clients (one per recipient), replies and errors included.",
        "counter",
        "event",
        &|s| s.events_out.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    );
    by_label(
        "ws_host_refused_total",
        "Frames or events that did not reach the handler, by reason.",
        "counter",
        "reason",
        &|s| s.refused.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    );
    by_label(
        "ws_host_disconnects_total",
        "Connections closed, by close code: the peer's, else the server's, else 1006 (dropped without one).",
        "counter",
        "code",
        &|s| s.disconnects.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    );
    by_label(
        "ws_host_traps_total",
        "Calls into the handler that failed (trap, deadline, memory, fuel, limits).",
        "counter",
        "",
        &|s| vec![(String::new(), s.traps)],
    );
    by_label("ws_host_swaps_total", "Successful hot swaps.", "counter", "", &|s| vec![(String::new(), s.swaps)]);
    by_label(
        "ws_host_instance_memory_bytes",
        "Linear memories and tables of the handler's instance, in bytes.",
        "gauge",
        "",
        &|s| vec![(String::new(), s.memory_bytes)],
    );
    if snapshots.iter().any(|(_, _, s)| s.cluster.is_some()) {
        type Read = fn(&ClusterSnapshot) -> u64;
        let cluster = |s: &Snapshot, f: Read| s.cluster.as_ref().map(|c| (String::new(), f(c))).into_iter().collect();
        let families: [(&str, &str, &str, Read); 7] = [
            ("ws_host_cluster_node", "This node's number in the cluster.", "gauge", |c| c.node),
            ("ws_host_cluster_connected", "1 while subscribed to the other nodes.", "gauge", |c| {
                u64::from(c.connected)
            }),
            ("ws_host_cluster_nodes", "Other nodes heard from lately.", "gauge", |c| c.nodes),
            ("ws_host_cluster_published_total", "Notes published to the other nodes.", "counter", |c| c.published),
            ("ws_host_cluster_received_total", "Notes received from the other nodes.", "counter", |c| c.received),
            (
                "ws_host_cluster_dropped_total",
                "Notes for the other nodes that could not be published (Redis unreachable or queue full).",
                "counter",
                |c| c.dropped,
            ),
            (
                "ws_host_cluster_missed_total",
                "Notes other nodes published that never arrived here (gaps in their sequence).",
                "counter",
                |c| c.missed,
            ),
        ];
        for (name, help, kind, value) in families {
            by_label(name, help, kind, "", &|s| cluster(s, value));
        }
    }
    let name = "ws_host_handler_seconds";
    let _ = writeln!(out, "# HELP {name} Time spent in the handler per call.\n# TYPE {name} histogram");
    for (route, handler, snapshot) in &snapshots {
        let labels = format!("route=\"{route}\",handler=\"{handler}\"");
        for (bound, count) in TIME_BUCKETS.iter().zip(&snapshot.time_buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", snapshot.time_count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {:.6}", snapshot.time_sum.as_secs_f64());
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", snapshot.time_count);
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
