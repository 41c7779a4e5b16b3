//! The bench's HTTP/1.1 client, written by hand: one keep-alive connection per caller, one
//! request at a time. It reads two kinds of answer: a body with a Content-Length (JSON: the
//! upstream, nginx, our gateway, and agentgateway's denials), and a chunked Server-Sent
//! Events stream (agentgateway's answers: the JSON-RPC message in an event's `data:` lines),
//! which it reads until the event carrying the response to the request's id, then through
//! the terminating zero-size chunk, so that the connection stays in sync for the next
//! request. Also the one-shot `GET /metrics` of the metrics gateway.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A keep-alive connection to `host`.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

/// An answer: its status, its `Mcp-Session-Id` header, and the JSON-RPC message (a JSON
/// body as sent; an event stream's response event's data; else the raw body).
pub struct Answer {
    pub status: u16,
    pub session: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Whether the answer carries the upstream's `echo` result (the text `ok`).
    pub fn is_ok(&self) -> bool {
        self.body.windows(4).any(|w| w == b"\"ok\"")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Conn {
    pub fn open(addr: &str) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    pub fn try_open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: addr.to_owned(),
        })
    }

    /// POSTs `body` (a JSON-RPC message with the id `id`, none for a notification) to `/mcp`.
    pub fn post(
        &mut self,
        token: &str,
        session: Option<&str>,
        id: Option<u64>,
        body: &[u8],
    ) -> Answer {
        self.try_post(token, session, id, body)
            .unwrap_or_else(|e| panic!("{}: {e}", self.host))
    }

    pub fn try_post(
        &mut self,
        token: &str,
        session: Option<&str>,
        id: Option<u64>,
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(s) = session {
            req.push_str(&format!("Mcp-Session-Id: {s}\r\n"));
        }
        req.push_str("\r\n");
        let mut buf = req.into_bytes();
        buf.extend_from_slice(body);
        // A server may close a keep-alive connection between requests: reconnect once. (Only
        // then: an answer broken off half-way is an error, not a reason to send it twice.)
        for attempt in 0..2 {
            if attempt > 0 {
                *self = Conn::try_open(&self.host).map_err(|e| format!("reconnect: {e}"))?;
            }
            if self.writer.write_all(&buf).is_ok()
                && let Some(answer) = read_response(&mut self.reader, id)?
            {
                return Ok(answer);
            }
        }
        Err("no answer".to_owned())
    }
}

/// One answer from `reader`; `None` when the server closed the connection before it.
fn read_response(
    reader: &mut BufReader<TcpStream>,
    id: Option<u64>,
) -> Result<Option<Answer>, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(format!("no answer within the read timeout ({e})"));
        }
        // Reset: closed, as far as a retry goes.
        Err(_) => return Ok(None),
    }
    let status = line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0);
    let (mut length, mut chunked, mut sse, mut session) = (None, false, false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed in the headers".to_owned());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().map_err(|e| format!("{l}: {e}"))?);
            } else if k.eq_ignore_ascii_case("mcp-session-id") {
                session = Some(v.to_owned());
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("content-type") {
                sse = v.starts_with("text/event-stream");
            }
        }
    }
    let mut events = sse.then(|| Events::new(id));
    let raw = if chunked {
        read_chunks(reader, events.as_mut())?
    } else {
        // No length and no chunks: an empty body (a 202, a 405), as HTTP/1.1 keeps it.
        let mut body = vec![0; length.unwrap_or(0)];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        if let Some(events) = events.as_mut() {
            events.feed(&body);
        }
        body
    };
    let body = match events {
        Some(mut events) => events.end().unwrap_or(raw),
        None => raw,
    };
    Ok(Some(Answer {
        status,
        session,
        body,
    }))
}

/// A chunked body, through its terminating zero-size chunk and trailers; each chunk goes to
/// `events` as it arrives.
fn read_chunks(
    reader: &mut BufReader<TcpStream>,
    mut events: Option<&mut Events>,
) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .map_err(|e| chunk_error(&events, e))?
            == 0
        {
            return Err("closed in a chunked body".to_owned());
        }
        let hex = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(hex, 16).map_err(|e| format!("chunk size {hex:?}: {e}"))?;
        if size == 0 {
            loop {
                line.clear();
                if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0
                    || line.trim_end().is_empty()
                {
                    return Ok(raw);
                }
            }
        }
        let start = raw.len();
        raw.resize(start + size, 0);
        reader
            .read_exact(&mut raw[start..])
            .map_err(|e| chunk_error(&events, e))?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).map_err(|e| e.to_string())?;
        if let Some(events) = events.as_mut() {
            events.feed(&raw[start..]);
        }
    }
}

fn chunk_error(events: &Option<&mut Events>, e: std::io::Error) -> String {
    match events {
        Some(ev) if ev.found.is_some() => {
            format!("the response event arrived, but the stream did not end: {e}")
        }
        _ => format!("in a chunked body: {e}"),
    }
}

/// A Server-Sent Events parser, fed bytes as they arrive, that keeps the first event whose
/// data is the JSON-RPC response to `id` (any response, when `id` is none). Other fields
/// (`event:`, `id:`, `retry:`, comments) and other messages are skipped.
struct Events {
    id: Option<u64>,
    pending: Vec<u8>,
    data: Vec<u8>,
    found: Option<Vec<u8>>,
}

impl Events {
    fn new(id: Option<u64>) -> Events {
        Events {
            id,
            pending: Vec::new(),
            data: Vec::new(),
            found: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(nl) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=nl).collect();
            self.line(&line[..nl]);
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // A blank line ends an event.
            let data = std::mem::take(&mut self.data);
            if self.found.is_none() && self.is_response(&data) {
                self.found = Some(data);
            }
        } else if let Some(d) = line.strip_prefix(b"data:") {
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data
                .extend_from_slice(d.strip_prefix(b" ").unwrap_or(d));
        }
    }

    fn is_response(&self, data: &[u8]) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(data) else {
            return false;
        };
        (v.get("result").is_some() || v.get("error").is_some())
            && self
                .id
                .is_none_or(|id| v.get("id") == Some(&Value::from(id)))
    }

    /// The response's data, once the body has ended (an unterminated last event counts).
    fn end(&mut self) -> Option<Vec<u8>> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(&rest);
        }
        self.line(b"");
        self.found.take()
    }
}

/// The gateway's `/metrics` text.
pub fn metrics_text(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    raw
}
