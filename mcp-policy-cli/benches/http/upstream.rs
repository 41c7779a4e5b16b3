//! The upstream every path ends at: a minimal streamable-HTTP MCP server in this process,
//! one thread per connection, that answers at once with a Content-Length JSON body
//! (`initialize` with a fresh `Mcp-Session-Id`, `tools/call` with the text `ok`, any other
//! request with an empty result, a notification with 202).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Starts the server on a free loopback port; returns the port.
pub fn start() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let sessions = Arc::clone(&sessions);
            std::thread::spawn(move || serve_upstream(stream, &sessions));
        }
    });
    port
}

fn serve_upstream(stream: TcpStream, sessions: &AtomicU64) {
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let method = line.split(' ').next().unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut extra = String::new();
        let answer = match (method.as_str(), msg["method"].as_str(), msg.get("id")) {
            ("POST", Some("initialize"), Some(id)) => {
                let n = sessions.fetch_add(1, Ordering::Relaxed);
                extra = format!("Mcp-Session-Id: up-{n}\r\n");
                Some(
                    json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":"2025-11-25",
                    "capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"0"}}}),
                )
            }
            ("POST", Some("tools/call"), Some(id)) => Some(
                json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"ok"}]}}),
            ),
            ("POST", Some(_), Some(id)) => Some(json!({"jsonrpc":"2.0","id":id,"result":{}})),
            _ => None,
        };
        let out = match answer {
            Some(v) => {
                let body = v.to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            None if method == "GET" => {
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n".to_owned()
            }
            None => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        if writer.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}
