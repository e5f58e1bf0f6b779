//! `deploy/replicas/`: the docker-compose file for two replicas and
//! PostgreSQL behind nginx. No Compose or container registry is reachable
//! where this is developed, so the file is checked here instead of run:
//! it parses as YAML, has the services the docs describe, each replica's
//! environment is one the relay accepts (through its own flag and
//! environment parser) naming the same database and audience, and nginx
//! balances over exactly those replicas with a read timeout above the
//! longest waiting read.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/replicas")
}

/// Compose's `${NAME:?message}` and `${NAME:-default}`, with `vars` set.
fn interpolate(text: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed ${") + start;
        let inner = &rest[start + 2..end];
        let (name, value) = if let Some((name, _)) = inner.split_once(":?") {
            let v = vars
                .get(name)
                .unwrap_or_else(|| panic!("{name} is required"));
            (name, v.to_string())
        } else if let Some((name, default)) = inner.split_once(":-") {
            (name, vars.get(name).copied().unwrap_or(default).to_owned())
        } else {
            (inner, vars.get(inner).copied().unwrap_or("").to_owned())
        };
        assert!(
            name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{name}"
        );
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn environment(service: &Yaml, vars: &HashMap<&str, &str>) -> HashMap<String, String> {
    service["environment"]
        .as_hash()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(n) => n.to_string(),
                other => panic!("environment value {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), interpolate(&v, vars))
        })
        .collect()
}

#[test]
fn deploy_compose_file_is_valid() {
    let text = std::fs::read_to_string(deploy_dir().join("docker-compose.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is YAML");
    let doc = &docs[0];
    let services = &doc["services"];
    let names: Vec<&str> = services
        .as_hash()
        .expect("services")
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres", "relay-a", "relay-b", "lb"]);

    let vars = HashMap::from([
        ("RETALK_DB_PASSWORD", "s3cret"),
        ("RETALK_ADMIN_PASSWORD", "admin-pw"),
    ]);
    let pg = environment(&services["postgres"], &vars);
    let mut configs = Vec::new();
    for relay in ["relay-a", "relay-b"] {
        let s = &services[relay];
        assert_eq!(s["build"]["context"].as_str(), Some("../.."), "{relay}");
        assert!(deploy_dir()
            .join("../..")
            .join(s["build"]["dockerfile"].as_str().unwrap())
            .exists());
        assert_eq!(
            s["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy")
        );
        let env = environment(s, &vars);
        let config = retalk_server::cli::Args::try_parse_from(["retalk-server"])
            .unwrap()
            .resolve(&|name| env.get(name).cloned().filter(|v| !v.is_empty()))
            .unwrap_or_else(|e| panic!("{relay}: the relay refuses its environment: {e}"));
        let db = config.postgres.clone().expect("a PostgreSQL database");
        assert_eq!(
            db,
            format!(
                "postgres://{}:{}@postgres:5432/{}",
                pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"]
            ),
            "{relay} uses the compose file's database"
        );
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.admin_password.as_deref(), Some("admin-pw"));
        assert!(
            config.metrics_addr.is_some(),
            "{relay}: /readyz for its healthcheck"
        );
        configs.push((relay, config));
    }
    let (a, b) = (&configs[0].1, &configs[1].1);
    assert_eq!(a.postgres, b.postgres, "one database");
    assert_eq!(a.audiences, b.audiences, "one audience");
    assert_eq!(a.audiences, ["http://127.0.0.1:8766"]);
    // Without the admin password the variable is empty, which the relay
    // reads as unset (/admin off).
    let env = environment(
        &services["relay-a"],
        &HashMap::from([("RETALK_DB_PASSWORD", "x")]),
    );
    let config = retalk_server::cli::Args::try_parse_from(["retalk-server"])
        .unwrap()
        .resolve(&|name| env.get(name).cloned().filter(|v| !v.is_empty()))
        .unwrap();
    assert_eq!(config.admin_password, None);

    // The balancer publishes its port on loopback only, and nginx sends to
    // exactly the two replicas, on the port they listen on.
    let lb = &services["lb"];
    let ports: Vec<&str> = lb["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(ports, ["127.0.0.1:8766:8766"]);
    let nginx = std::fs::read_to_string(deploy_dir().join("nginx.conf")).unwrap();
    let block = nginx
        .split_once("upstream retalk {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .expect("an upstream block")
        .0;
    let upstream: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("server "))
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches(';')
                .to_owned()
        })
        .collect();
    let wanted: Vec<String> = configs
        .iter()
        .map(|(name, c)| format!("{name}:{}", c.port))
        .collect();
    assert_eq!(upstream, wanted);
    assert!(
        nginx.contains("proxy_pass http://retalk;"),
        "requests go to that upstream"
    );
    let timeout: u64 = nginx
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("proxy_read_timeout "))
        .expect("proxy_read_timeout")
        .trim_end_matches(';')
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        timeout > retalk::proto::tools::read_messages::MAX_WAIT_SECS,
        "nginx would cut waiting reads at {timeout} s"
    );
    assert!(
        nginx.contains("location /admin"),
        "/admin kept off the balancer"
    );
    // Balanced braces: a truncated edit would not load.
    assert_eq!(nginx.matches('{').count(), nginx.matches('}').count());
}
