//! Reading messages: a client's or a server's line read as far as the gateway needs,
//! without any of its state, and the JSON-RPC ids the gateway keys its state by.

use serde_json::Value;

use super::envelope::{CallRequest, Envelope};
use super::wire::{INPUT_REQUIRED, PARSE_ERROR, error_response};
use crate::args::cap_nesting;
use crate::source::parse_json;

/// Containers nested deeper than this in a message are read as empty ones (the arguments
/// then stay deeper than the policy's bound of 64 and are denied, instead of the message
/// failing to parse at the JSON reader's own limit of 128).
pub const MESSAGE_DEPTH: usize = 100;

/// What the gateway needs from a server's answer.
#[derive(Debug)]
pub(super) struct AnswerParts {
    pub(super) id: Value,
    pub(super) error: bool,
    pub(super) is_error: bool,
    pub(super) protocol: Option<String>,
    /// The server's own `requestState`, when the result is `input_required` (2026-07-28).
    pub(super) continues: Option<String>,
}

/// The envelope of a message that was read whole (too deep for the envelope reader).
#[derive(serde::Deserialize)]
struct OwnedEnvelope {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
}

impl OwnedEnvelope {
    fn into_parts(self) -> AnswerParts {
        let result = self.result.as_ref();
        AnswerParts {
            id: if self.method.is_some() {
                Value::Null
            } else {
                self.id
            },
            error: self.error.is_some(),
            is_error: result.and_then(|r| r.get("isError")) == Some(&Value::Bool(true)),
            protocol: result
                .and_then(|r| r.get("protocolVersion"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            continues: result
                .filter(|r| r.get("resultType").and_then(Value::as_str) == Some(INPUT_REQUIRED))
                .and_then(|r| r.get("requestState"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A message from the client, read as far as the gateway needs without any of its state:
/// the fields of a tool call, or the envelope of another message. Reading is most of the
/// work of handling a message; a host that shares one [`Gateway`] between threads does it
/// before taking the lock, then calls [`Gateway::from_client_message`].
///
/// [`Gateway`]: super::Gateway
/// [`Gateway::from_client_message`]: super::Gateway::from_client_message
#[derive(Debug)]
pub struct ClientMessage<'a> {
    pub(super) line: &'a [u8],
    pub(super) read: ClientRead<'a>,
}

#[derive(Debug)]
pub(super) enum ClientRead<'a> {
    /// A tool call of the plain shape.
    Call(CallRequest<'a>),
    /// Another message: its envelope.
    Envelope(Envelope<'a>),
    /// Anything either reader doubted: read whole by the gateway.
    Whole,
}

impl<'a> ClientMessage<'a> {
    /// Reads one message (one line, without its newline) from the client.
    pub fn read(line: &'a [u8]) -> ClientMessage<'a> {
        // A tool call of the plain shape is read into the fields the decision needs (a line
        // of another shape fails at its first unexpected key); any other line that may be a
        // tool call is read whole (strictly) by the gateway. Most other messages are only
        // forwarded: their envelope decides, read without the rest.
        let read = match CallRequest::read(line) {
            Some(call) if call.id.is_some() => ClientRead::Call(call),
            _ if contains(line, b"tools/call") => ClientRead::Whole,
            _ => Envelope::read(line).map_or(ClientRead::Whole, ClientRead::Envelope),
        };
        ClientMessage { line, read }
    }

    /// For a `tools/call` of the plain shape (read in one pass): its id, and the progress
    /// token its `params._meta` names, if any. `None` for any other message, so a host that
    /// routes answers by id can skip reading the line again for the common call.
    ///
    /// ```
    /// use mcp_policy::mcp::ClientMessage;
    /// use serde_json::json;
    ///
    /// let line = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"scan","_meta":{"progressToken":"p1"}}}"#;
    /// let message = ClientMessage::read(line);
    /// assert_eq!(message.plain_call(), Some((&json!(7), Some(&json!("p1")))));
    ///
    /// let list = br#"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#;
    /// assert_eq!(ClientMessage::read(list).plain_call(), None);
    /// ```
    pub fn plain_call(&self) -> Option<(&Value, Option<&Value>)> {
        let ClientRead::Call(call) = &self.read else {
            return None;
        };
        let id = call.id.as_ref()?;
        let token = match &call.meta {
            None => None,
            Some(Value::Object(meta)) => meta.get("progressToken").filter(|t| !t.is_null()),
            // An odd `_meta` is for the gateway's full rules, not for a shortcut.
            Some(_) => return None,
        };
        Some((id, token))
    }
}

/// A message from the server, read as far as the gateway needs without any of its state
/// (see [`ClientMessage`]); handled with [`Gateway::from_server_message`].
///
/// [`Gateway::from_server_message`]: super::Gateway::from_server_message
#[derive(Debug)]
pub struct ServerMessage<'a> {
    pub(super) line: &'a [u8],
    /// What an answer says; `None` for anything else (passed on as it is).
    pub(super) answer: Option<AnswerParts>,
}

impl<'a> ServerMessage<'a> {
    /// Reads one message (one line, without its newline) from the server.
    pub fn read(line: &'a [u8]) -> ServerMessage<'a> {
        let answer = match Envelope::read(line) {
            Some(envelope) => match (&envelope.method, envelope.id()) {
                (None, Some(id)) => {
                    let (is_error, protocol, continues) = match &envelope.result {
                        Some(r) => (
                            r.is_error,
                            r.protocol_version.clone(),
                            r.request_state.clone().filter(|_| r.input_required),
                        ),
                        None => (false, None, None),
                    };
                    Some(AnswerParts {
                        id: id.clone(),
                        error: envelope.error.is_some(),
                        is_error,
                        protocol,
                        continues,
                    })
                }
                _ => None,
            },
            // Too deep or odd for the envelope reader: read it whole (bounded), and if even
            // that fails, it is not for the gateway to judge: the client sees what was sent.
            None => match parse_line(line) {
                Ok(message @ Value::Object(_)) => serde_json::from_value::<OwnedEnvelope>(message)
                    .ok()
                    .map(OwnedEnvelope::into_parts),
                _ => None,
            },
        };
        ServerMessage { line, answer }
    }

    /// The id of the client's request this message answers (a message with an `id`, not
    /// null, and no `method`); `None` for anything else.
    ///
    /// ```
    /// use mcp_policy::mcp::ServerMessage;
    /// use serde_json::json;
    ///
    /// let answer = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#);
    /// assert_eq!(answer.answer_id(), Some(&json!(7)));
    /// let request = ServerMessage::read(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    /// assert_eq!(request.answer_id(), None);
    /// ```
    pub fn answer_id(&self) -> Option<&Value> {
        self.answer
            .as_ref()
            .map(|parts| &parts.id)
            .filter(|id| !id.is_null())
    }

    /// Whether handling this message may call the store (through the [`Decider`]): an
    /// error answer refunds its call's charges. Nothing else from the server does, so a host
    /// whose store blocks can handle every other message where it cannot block.
    ///
    /// [`Decider`]: crate::Decider
    ///
    /// ```
    /// use mcp_policy::mcp::ServerMessage;
    ///
    /// let failed = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32603,"message":"x"}}"#);
    /// assert!(failed.may_refund());
    /// let answered = ServerMessage::read(br#"{"jsonrpc":"2.0","id":7,"result":{"isError":true}}"#);
    /// assert!(!answered.may_refund());
    /// ```
    pub fn may_refund(&self) -> bool {
        self.answer.as_ref().is_some_and(|parts| parts.error)
    }
}

/// A map key for a JSON-RPC id: the number itself for the usual ids (nothing to allocate),
/// its JSON text for any other, so `1` and `"1"` differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum IdKey {
    Number(u64),
    Text(String),
}

impl IdKey {
    /// The id's JSON text.
    pub(super) fn text(&self) -> String {
        match self {
            IdKey::Number(n) => n.to_string(),
            IdKey::Text(text) => text.clone(),
        }
    }
}

/// The map key of a JSON-RPC id.
pub(super) fn key(id: &Value) -> IdKey {
    match id.as_u64() {
        Some(n) => IdKey::Number(n),
        None => IdKey::Text(id.to_string()),
    }
}

/// Reads a line whole and strictly (a repeated key anywhere is an error); the error is the
/// JSON-RPC parse error the client gets.
pub(super) fn parse_line(line: &[u8]) -> Result<Value, Value> {
    let text = std::str::from_utf8(line).map_err(|_| {
        error_response(
            &Value::Null,
            PARSE_ERROR,
            "Parse error: the message is not UTF-8",
        )
    })?;
    // Read as it is; only text too deep for the reader is read again with deep containers
    // emptied (their arguments then stay too deep for the policy, which denies them).
    let parsed = match parse_json(text) {
        Err(e) if e.message.contains("recursion limit") => {
            parse_json(&cap_nesting(text, MESSAGE_DEPTH))
        }
        other => other,
    };
    parsed.map_err(|e| {
        error_response(
            &Value::Null,
            PARSE_ERROR,
            &format!("Parse error: {}", e.message),
        )
    })
}
