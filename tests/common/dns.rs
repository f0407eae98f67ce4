//! A DNS server on loopback that the test controls: which names have which addresses and
//! TTLs, which answer NXDOMAIN or SERVFAIL, which go unanswered. Over UDP (what a resolver
//! asks first), one thread, counted queries; stopped when dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// How the server answers for one name.
#[derive(Debug, Clone)]
pub enum Reply {
    /// These addresses (A and AAAA by their family), with this TTL in seconds.
    Addresses(Vec<IpAddr>, u32),
    NxDomain,
    ServFail,
    /// No answer at all: the resolver times out.
    Silent,
}

#[derive(Default)]
struct Zone {
    replies: HashMap<String, Reply>,
    /// Queries seen, by name.
    queries: HashMap<String, u64>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    /// A server on a free UDP port of 127.0.0.1. Names it has no reply for are NXDOMAIN.
    pub fn start() -> DnsServer {
        let socket = (0..50)
            .find_map(|_| UdpSocket::bind(("127.0.0.1", super::free_port("127.0.0.1"))).ok())
            .expect("a free UDP port for the DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("the DNS server's address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (zone_for_thread, stop_for_thread) = (zone.clone(), stop.clone());
        std::thread::spawn(move || serve(&socket, &zone_for_thread, &stop_for_thread));
        DnsServer { addr, zone, stop }
    }

    /// From now on, `name` is answered with `reply`.
    pub fn set(&self, name: &str, reply: Reply) {
        self.zone
            .lock()
            .expect("the zone")
            .replies
            .insert(name.to_ascii_lowercase(), reply);
    }

    /// Queries for `name` so far (A and AAAA each count).
    pub fn queries(&self, name: &str) -> u64 {
        let zone = self.zone.lock().expect("the zone");
        zone.queries
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(socket: &UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Some(answer) = answer(&query, zone) {
            let _ = socket.send_to(&answer, from);
        }
    }
}

/// The bytes of the answer to `query`; `None` to stay silent.
fn answer(query: &Message, zone: &Mutex<Zone>) -> Option<Vec<u8>> {
    let question = query.queries().first()?.clone();
    let name = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let reply = {
        let mut zone = zone.lock().ok()?;
        *zone.queries.entry(name.clone()).or_default() += 1;
        zone.replies.get(&name).cloned().unwrap_or(Reply::NxDomain)
    };
    let mut response = Message::new();
    response
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .add_query(question.clone());
    match reply {
        Reply::Silent => return None,
        Reply::NxDomain => {
            response.set_response_code(ResponseCode::NXDomain);
        }
        Reply::ServFail => {
            response.set_response_code(ResponseCode::ServFail);
        }
        Reply::Addresses(ips, ttl) => {
            for ip in ips {
                let rdata = match (ip, question.query_type()) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                response.add_answer(Record::from_rdata(question.name().clone(), ttl, rdata));
            }
        }
    }
    response.to_vec().ok()
}
