//! What a JSON-RPC message is, for routing it: a request (its id, method and progress
//! token), a notification (a progress notification's token), an answer (its id), or not one
//! message. Read from what the core already read where it can (a plain `tools/call`, an
//! answer), else from the line.

use mcp_policy::mcp::{ClientMessage, ServerMessage};
use serde::Deserialize;
use serde_json::Value;

/// What a message is, for routing.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A request: its id (as JSON text), its method, and the progress token it named.
    Request {
        /// The id, as JSON text.
        id: String,
        /// The method.
        method: String,
        /// The progress token, as JSON text.
        progress: Option<String>,
    },
    /// A notification; for `notifications/progress`, its token.
    Notification {
        /// The progress token, as JSON text.
        progress: Option<String>,
    },
    /// An answer to the request with this id (as JSON text).
    Response {
        /// The id, as JSON text.
        id: String,
    },
    /// Not one JSON-RPC message (malformed, a batch).
    Invalid,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<ProbeParams>,
}

#[derive(Deserialize)]
struct ProbeParams {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Value>,
    #[serde(rename = "_meta", default)]
    meta: Option<ProbeMeta>,
}

#[derive(Deserialize)]
struct ProbeMeta {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<Value>,
}

impl Kind {
    /// The kind of one line.
    pub fn of(bytes: &[u8]) -> Kind {
        // Only an object is one message (serde would read an array as a struct's fields).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Kind::Invalid;
        }
        let Ok(probe) = serde_json::from_slice::<Probe>(bytes) else {
            return Kind::Invalid;
        };
        let params = probe.params;
        match (probe.id, probe.method) {
            (Some(id), Some(Value::String(method))) => Kind::Request {
                id: id.to_string(),
                method,
                progress: params
                    .and_then(|p| p.meta)
                    .and_then(|m| m.progress_token)
                    .map(|t| t.to_string()),
            },
            (None, Some(Value::String(method))) => Kind::Notification {
                progress: if method == "notifications/progress" {
                    params.and_then(|p| p.progress_token).map(|t| t.to_string())
                } else {
                    None
                },
            },
            (Some(id), None) => Kind::Response { id: id.to_string() },
            _ => Kind::Invalid,
        }
    }

    /// The kind of a client message the core has read: a tool call of the plain shape
    /// from what the core read (the line is not read again), anything else by [`Kind::of`].
    pub fn of_client(message: &ClientMessage<'_>, line: &[u8]) -> Kind {
        match message.plain_call() {
            Some((id, token)) => Kind::Request {
                id: id.to_string(),
                method: "tools/call".to_owned(),
                progress: token.map(Value::to_string),
            },
            None => Kind::of(line),
        }
    }

    /// The kind of a server message the core has read: an answer from the id the core
    /// read, anything else by [`Kind::of`].
    pub fn of_server(message: &ServerMessage<'_>, line: &[u8]) -> Kind {
        match message.answer_id() {
            Some(id) => Kind::Response { id: id.to_string() },
            None => Kind::of(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"_meta":{"progressToken":"t"}}}"#),
            Kind::Request {
                id: "1".into(),
                method: "tools/call".into(),
                progress: Some("\"t\"".into())
            }
        );
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#),
            Kind::Notification {
                progress: Some("\"t\"".into())
            }
        );
        assert_eq!(
            Kind::of(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Kind::Response { id: "\"a\"".into() }
        );
        assert_eq!(Kind::of(b"[1]"), Kind::Invalid);
        assert_eq!(
            Kind::of(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#),
            Kind::Invalid
        );
        assert_eq!(Kind::of(b"nope"), Kind::Invalid);
    }

    /// What the core read gives the same kind as reading the line here.
    #[test]
    fn kinds_from_what_the_core_read_agree() {
        let client: [&[u8]; 9] = [
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1}}}"#,
            br#"{"jsonrpc":"2.0","id":"\u0061","method":"tools/call","params":{"name":"a","_meta":{"progressToken":7}}}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":null}}}"#,
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a","_meta":null}}"#,
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"a","_meta":"odd"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"a"}}"#,
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"progressToken":"p"}}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}"#,
            br#"{"jsonrpc":"2.0","id":6,"result":{}}"#,
        ];
        for line in client {
            let read = ClientMessage::read(line);
            assert_eq!(
                Kind::of_client(&read, line),
                Kind::of(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(ClientMessage::read(client[1]).plain_call().is_some());
        let server: [&[u8]; 6] = [
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
            br#"{"jsonrpc":"2.0","id":"\u0061","error":{"code":-1,"message":"no"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}"#,
            br#"{"jsonrpc":"2.0","id":9,"method":"elicitation/create","params":{}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":2,"result":{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}"#,
        ];
        for line in server {
            let read = ServerMessage::read(line);
            assert_eq!(
                Kind::of_server(&read, line),
                Kind::of(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
