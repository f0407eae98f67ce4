//! SIGTERM: the gateway stops accepting, lets the request in flight finish, and exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// A backend that answers every request after `delay`; `received` counts requests read.
fn slow_backend(
    delay: Duration,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicUsize>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind slow backend");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let received = received.clone();
                    std::thread::spawn(move || {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        received.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(delay);
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow");
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    addr
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let backend = slow_backend(Duration::from_millis(1500), stop.clone(), received.clone());
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        "server: {{ shutdown_timeout: 10s }}\naccess_log: {{ enabled: false }}\nbackends: [{{ name: slow, static: {{ host: {}, port: {} }} }}]\nlisteners: [{{ name: main, address: '{listen}', routes: [{{ name: all, backend: slow }}] }}]\n",
        backend.ip(),
        backend.port()
    );
    let mut gw = Gateway::start(&yaml, listen, &[]);

    let in_flight = std::thread::spawn(move || request(listen, "GET", "/", &[]));
    // SIGTERM only once the request is surely in flight: the backend has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the backend"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.proc.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    let resp = in_flight.join().expect("request thread");
    assert_eq!(resp.status, 200, "the request in flight was cut off");
    assert_eq!(resp.body, b"slow");

    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = gw.proc.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "gateway still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
    assert!(sent.elapsed() < Duration::from_secs(12));
    assert!(
        std::net::TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err(),
        "still accepting after shutdown"
    );
    stop.store(true, Ordering::Relaxed);
}
