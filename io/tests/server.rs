//! The server's bounds: at most `max_connections` served at once (the next
//! waits until one closes), a client that sends no headers is cut off, and
//! shutdown lets the request in flight finish while refusing new ones.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use provenix_io::{text, Handler, ListenOptions, Server};

/// A plain-HTTP loopback server whose handler waits `delay`, then answers
/// "done"; shut down when `stop` receives.
fn serve(
    max_connections: usize,
    header_timeout: Duration,
    delay: Duration,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut opts = ListenOptions::new("127.0.0.1:0".parse().unwrap(), None, true);
    opts.max_connections = max_connections;
    opts.header_timeout = header_timeout;
    opts.grace = Duration::from_secs(5);
    let server = rt.block_on(Server::bind(opts)).unwrap();
    let addr = server.local_addr().unwrap();
    let handler: Handler = Arc::new(move |_req, _peer| {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            text(StatusCode::OK, "done")
        })
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let t = std::thread::spawn(move || {
        rt.block_on(server.run(handler, async move {
            let _ = rx.await;
        }));
    });
    (addr, tx, t)
}

fn request(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn one_slot_a_silent_client_holds_it_until_its_header_timeout() {
    let (addr, _stop, _t) = serve(1, Duration::from_millis(400), Duration::ZERO);
    let (tx, rx) = mpsc::channel();
    // A: connects and says nothing; it holds the only slot.
    let mut a = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let tx_b = tx.clone();
    let b = std::thread::spawn(move || {
        let r = request(addr).unwrap();
        tx_b.send(("b answered", r)).unwrap();
    });
    // The server cuts A off at its header timeout: A reads EOF.
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = a.read_to_end(&mut buf);
    tx.send(("a closed", String::new())).unwrap();
    b.join().unwrap();
    let order: Vec<_> = rx.try_iter().collect();
    assert_eq!(
        order[0].0, "a closed",
        "B was served while A held the only slot"
    );
    assert_eq!(order[1].0, "b answered");
    assert!(order[1].1.ends_with("done"), "{}", order[1].1);
}

#[test]
fn shutdown_finishes_the_request_in_flight_and_refuses_new_ones() {
    let (addr, stop, t) = serve(4, Duration::from_secs(5), Duration::from_millis(500));
    let inflight = std::thread::spawn(move || request(addr));
    std::thread::sleep(Duration::from_millis(150));
    stop.send(()).unwrap();
    let answer = inflight.join().unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("done"), "{answer}");
    t.join().unwrap();
    assert!(
        request(addr).is_err(),
        "the listener is closed after shutdown"
    );
}
