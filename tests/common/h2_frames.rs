//! A raw HTTP/2 client that writes frames byte by byte (RFC 9113 §4, HPACK literals from
//! RFC 7541 §6.2), so tests can send what no well-behaved client library would: resets right
//! after requests, endless CONTINUATION frames, header blocks that decompress to megabytes,
//! floods of SETTINGS and PING. h2c prior knowledge over loopback TCP; every read is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// GOAWAY's error code when the peer is told it asks too much (RFC 9113 §7).
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
/// RST_STREAM's error code for a stream the client no longer wants.
pub const CANCEL: u32 = 0x8;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One frame as read back.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's error code.
    pub fn goaway_code(&self) -> Option<u32> {
        (self.kind == GOAWAY && self.payload.len() >= 8).then(|| {
            u32::from_be_bytes([
                self.payload[4],
                self.payload[5],
                self.payload[6],
                self.payload[7],
            ])
        })
    }
}

/// How the server's side of a connection ended up.
#[derive(Debug)]
pub struct Outcome {
    pub frames: Vec<Frame>,
    /// The server closed the connection (end of stream or reset).
    pub closed: bool,
}

impl Outcome {
    pub fn goaway(&self) -> Option<u32> {
        self.frames.iter().find_map(Frame::goaway_code)
    }
}

pub struct H2Conn {
    stream: TcpStream,
}

impl H2Conn {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub fn connect(addr: SocketAddr) -> H2Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("write timeout");
        let mut conn = H2Conn { stream };
        conn.stream.write_all(PREFACE).expect("preface");
        conn.send(SETTINGS, 0, 0, &[]).expect("settings");
        conn
    }

    /// Writes one frame. An error means the server has closed the connection.
    pub fn send(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.stream.write_all(&frame(kind, flags, stream, payload))
    }

    /// Reads frames until the server closes the connection, `stop` says so, or `wait` passes.
    pub fn read_until(&mut self, wait: Duration, stop: impl Fn(&Frame) -> bool) -> Outcome {
        let deadline = Instant::now() + wait;
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Outcome {
                    frames,
                    closed: false,
                };
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Outcome {
                        frames,
                        closed: true,
                    }
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Outcome {
                        frames,
                        closed: false,
                    }
                }
                Err(_) => {
                    return Outcome {
                        frames,
                        closed: true,
                    }
                }
            }
            while let Some((frame, used)) = parse(&buf) {
                buf.drain(..used);
                let done = stop(&frame);
                frames.push(frame);
                if done {
                    return Outcome {
                        frames,
                        closed: false,
                    };
                }
            }
        }
    }
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 9 {
        return None;
    }
    let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
    if buf.len() < 9 + len {
        return None;
    }
    let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
    Some((
        Frame {
            kind: buf[3],
            flags: buf[4],
            stream,
            payload: buf[9..9 + len].to_vec(),
        },
        9 + len,
    ))
}

/// An HPACK integer with an `prefix`-bit prefix, the first byte's other bits set to `first`.
fn integer(value: usize, prefix: u32, first: u8) -> Vec<u8> {
    let max = (1usize << prefix) - 1;
    if value < max {
        return vec![first | value as u8];
    }
    let mut out = vec![first | max as u8];
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
    out
}

/// A header field as a literal with a literal name, not Huffman-coded; `indexed` adds it to
/// the dynamic table (RFC 7541 §6.2.1), where later blocks can refer to it with one byte.
pub fn literal(name: &str, value: &[u8], indexed: bool) -> Vec<u8> {
    let mut out = vec![if indexed { 0x40 } else { 0x00 }];
    out.extend(integer(name.len(), 7, 0));
    out.extend_from_slice(name.as_bytes());
    out.extend(integer(value.len(), 7, 0));
    out.extend_from_slice(value);
    out
}

/// A reference to entry `index` of the tables (RFC 7541 §6.1): 62 is the newest dynamic one.
pub fn indexed(index: usize) -> Vec<u8> {
    integer(index, 7, 0x80)
}

/// The header block of a request.
pub fn request_block(method: &str, path: &str) -> Vec<u8> {
    [
        literal(":method", method.as_bytes(), false),
        literal(":scheme", b"http", false),
        literal(":path", path.as_bytes(), false),
        literal(":authority", b"gateway.test", false),
    ]
    .concat()
}
