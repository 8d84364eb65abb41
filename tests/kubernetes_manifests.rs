//! Issue 15, item 7: the example in `deploy/kubernetes/` parses, and its ports, probes,
//! replicas, environment and grace period agree with cch's own defaults and routes (no schema
//! validator installs from the registries this project may use, so the checks are ours).

mod support;

use std::collections::HashMap;
use std::path::Path;

use claude_code_hub::app::config::Settings;
use serde::Deserialize;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cch");

fn load(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}"));
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

fn one(file: &str, kind: &str) -> Value {
    let docs = load(file);
    assert_eq!(docs.len(), 1, "{file}");
    let d = docs.into_iter().next().unwrap();
    assert_eq!(d["kind"], kind, "{file}");
    assert!(
        d["apiVersion"].is_string() && d["metadata"]["name"].is_string(),
        "{file}"
    );
    d
}

/// The container's literal environment, with placeholders for values from the Secret.
fn env_of(container: &Value) -> HashMap<String, String> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match (&e["value"], &e["valueFrom"]["secretKeyRef"]["key"]) {
                (Value::String(v), _) => v.clone(),
                (_, Value::String(k)) if k == "DSN" => "postgres://u:p@db:5432/cch".into(),
                (_, Value::String(k)) if k == "REDIS_URL" => "redis://redis:6379".into(),
                (_, Value::String(_)) => "a-long-enough-secret".into(),
                _ => panic!("env {name} has neither a value nor a secret key"),
            };
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn the_kubernetes_example_matches_cch_defaults() {
    let deploy = one("deployment.yaml", "Deployment");
    let service = one("service.yaml", "Service");
    let pdb = one("pdb.yaml", "PodDisruptionBudget");
    let secret = one("secret.example.yaml", "Secret");

    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 2);
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];

    // Every variable is one cch accepts, and the port is the one it listens on.
    let env = env_of(c);
    let settings = Settings::from_map(&env).expect("the manifest's environment is valid for cch");
    let defaults = Settings::from_map(&HashMap::new()).unwrap();
    assert_eq!(defaults.app_port, 23000);
    let port = &c["ports"][0];
    assert_eq!(port["containerPort"], i64::from(settings.app_port));
    let port_name = port["name"].as_str().unwrap();
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    for secret_key in ["ADMIN_TOKEN", "DSN", "REDIS_URL"] {
        assert!(secret["stringData"][secret_key].is_string(), "{secret_key}");
    }

    // Probes: liveness on /health, readiness on /ready, on the named port.
    for (probe, path) in [
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
        ("startupProbe", "/health"),
    ] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], port_name, "{probe}");
    }

    // The grace period covers the ready delay, the drain, the 2 s cut and 1 s close.
    let grace_ms = pod["terminationGracePeriodSeconds"].as_u64().unwrap() * 1000;
    let needed = settings.client.shutdown_ready_delay + settings.client.shutdown_drain_timeout;
    assert!(
        grace_ms >= needed.as_millis() as u64 + 3000,
        "grace {grace_ms} ms < {needed:?} + 3 s"
    );
    assert!(!settings.client.shutdown_ready_delay.is_zero());

    // The data folder is mounted where DATA_DIR points, and memory requests are set.
    assert_eq!(c["volumeMounts"][0]["mountPath"], env["DATA_DIR"]);
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());

    // The probe paths are cch's: the real binary answers them on its port with 200.
    let cch = support::bin::spawn(BIN, &[]).await;
    for path in ["/health", "/ready"] {
        let r = cch.http.get(cch.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}
