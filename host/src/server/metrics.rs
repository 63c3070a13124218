//! `/metrics` in the Prometheus text format: per route, the clients it
//! holds and which handler version serves it since when.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use super::endpoint::Endpoint;

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
    family("ws_host_handler_version", "The version serving the route: 1 at load, plus one per swap.", &|e| {
        let version = e.handler().version();
        (format!(",digest=\"{}\"", version.digest), version.number.to_string())
    });
    family("ws_host_handler_loaded_timestamp_seconds", "When the serving version was loaded or swapped in.", &|e| {
        let loaded = e.handler().version().loaded_at.duration_since(UNIX_EPOCH).unwrap_or_default();
        (String::new(), format!("{:.3}", loaded.as_secs_f64()))
    });
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
