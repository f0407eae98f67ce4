//! Live reload under steady load: SIGHUP and file changes swap the config without failing a
//! request; a broken config is rejected and the last good one keeps serving.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

fn config(
    listen: SocketAddr,
    admin: SocketAddr,
    one: SocketAddr,
    two: SocketAddr,
    target: &str,
) -> String {
    format!(
        r#"
admin: {{ address: '{admin}' }}
access_log: {{ enabled: false }}
backends:
  - {{ name: one, static: {{ host: {}, port: {} }} }}
  - {{ name: two, static: {{ host: {}, port: {} }} }}
listeners:
  - name: main
    address: {listen}
    routes:
      - {{ name: all, backend: {target} }}
"#,
        one.ip(),
        one.port(),
        two.ip(),
        two.port()
    )
}

/// Replaces the file at once (write, then rename), as a careful operator or a ConfigMap does.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write config");
    std::fs::rename(&tmp, path).expect("rename config");
}

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn reloads_under_load_lose_no_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one_addr = free_addr("127.0.0.2");
    let two_addr = free_addr("127.0.0.3");
    let _one = echo(one_addr, "one", dir.path());
    let _two = echo(two_addr, "two", dir.path());
    let listen = free_addr("127.0.0.1");
    let admin = free_addr("127.0.0.1");
    let path = dir.path().join("gateway.yaml");
    replace(&path, &config(listen, admin, one_addr, two_addr, "one"));
    let gateway = run_gateway(&path, dir.path(), &[listen, admin]);
    let pid = gateway.child.id();

    // Steady load: 4 keep-alive clients, each request checked.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(listen);
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let resp = client.send("GET", "/", &[]);
                    let by = if resp.status == 200 {
                        resp.json()["servedBy"].as_str().unwrap_or("?").to_owned()
                    } else {
                        String::from_utf8_lossy(&resp.body).into_owned()
                    };
                    seen.lock().expect("lock").push((resp.status, by));
                    if resp.header("connection") == Some("close") {
                        client = Client::connect(listen);
                    }
                }
            })
        })
        .collect();

    // Ten reloads by SIGHUP, alternating the backend.
    for i in 0..10 {
        let target = if i % 2 == 0 { "two" } else { "one" };
        replace(&path, &config(listen, admin, one_addr, two_addr, target));
        hangup(pid);
        std::thread::sleep(Duration::from_millis(200));
    }
    // A broken config: rejected, and "one" (the last good) keeps serving.
    replace(&path, "listeners: [ this is not a config");
    hangup(pid);
    std::thread::sleep(Duration::from_millis(300));
    let served_now = request(listen, "GET", "/", &[]).served_by();
    assert_eq!(served_now, "one", "the last good config stopped serving");

    // A file change alone, without a signal, is picked up too.
    replace(&path, &config(listen, admin, one_addr, two_addr, "two"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(listen, "GET", "/", &[]).served_by() != "two" {
        assert!(
            Instant::now() < deadline,
            "the changed file was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().expect("load thread");
    }
    let seen = seen.lock().expect("lock");
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        seen.len() > 100,
        "too little load to mean anything: {}",
        seen.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(seen.iter().any(|(_, by)| by == "one") && seen.iter().any(|(_, by)| by == "two"));

    let metrics =
        String::from_utf8_lossy(&request(admin, "GET", "/metrics", &[]).body).into_owned();
    let value = |series: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value(r#"switchyard_config_reloads_total{result="success"}"#) >= 11.0,
        "{metrics}"
    );
    assert_eq!(
        value(r#"switchyard_config_reloads_total{result="failure"}"#),
        1.0,
        "{metrics}"
    );
    assert!(value("switchyard_config_last_success_timestamp_seconds") > 1.7e9);
    let output = gateway.output();
    assert!(
        output.contains("config reload (SIGHUP) rejected"),
        "{output}"
    );
}

#[test]
fn listeners_cannot_change_on_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one_addr = free_addr("127.0.0.2");
    let _one = echo(one_addr, "one", dir.path());
    let listen = free_addr("127.0.0.1");
    let admin = free_addr("127.0.0.1");
    let path = dir.path().join("gateway.yaml");
    replace(&path, &config(listen, admin, one_addr, one_addr, "one"));
    let gateway = run_gateway(&path, dir.path(), &[listen]);
    let pid = gateway.child.id();

    let moved = free_addr("127.0.0.1");
    replace(&path, &config(moved, admin, one_addr, one_addr, "one"));
    hangup(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gateway.output().contains("cannot change without a restart") {
        assert!(
            Instant::now() < deadline,
            "no rejection logged:\n{}",
            gateway.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(request(listen, "GET", "/", &[]).served_by(), "one");
}

#[test]
fn filter_counters_survive_a_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let one_addr = free_addr("127.0.0.2");
    let _one = echo(one_addr, "one", dir.path());
    let listen = free_addr("127.0.0.1");
    let admin = free_addr("127.0.0.1");
    let yaml = |route: &str| {
        format!(
            "admin: {{ address: '{admin}' }}\naccess_log: {{ enabled: false }}\nbackends: [{{ name: one, static: {{ host: {}, port: {} }} }}]\nlisteners:\n  - name: main\n    address: '{listen}'\n    filters:\n      pre_routing:\n        - {{ name: transformation, config: {{ request: {{ set: [{{ name: x-v, value: jwt.version }}] }} }} }}\n    routes: [{{ name: {route}, backend: one }}]\n",
            one_addr.ip(),
            one_addr.port()
        )
    };
    let path = dir.path().join("gateway.yaml");
    replace(&path, &yaml("first"));
    let _gateway = run_gateway(&path, dir.path(), &[listen, admin]);
    let pid = _gateway.child.id();

    for _ in 0..3 {
        assert_eq!(request(listen, "GET", "/", &[]).status, 200);
    }
    replace(&path, &yaml("second"));
    hangup(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics =
            String::from_utf8_lossy(&request(admin, "GET", "/metrics", &[]).body).into_owned();
        if metrics.contains(r#"switchyard_config_reloads_total{result="success"} 1"#) {
            break;
        }
        assert!(Instant::now() < deadline, "reload not seen:\n{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..2 {
        assert_eq!(request(listen, "GET", "/", &[]).status, 200);
    }
    let metrics =
        String::from_utf8_lossy(&request(admin, "GET", "/metrics", &[]).body).into_owned();
    let series = r#"switchyard_transformation_header_drops_total{listener="main",header="x-v",reason="no_value"} 5"#;
    assert!(
        metrics.lines().any(|l| l == series),
        "counter went backwards:\n{metrics}"
    );
}
