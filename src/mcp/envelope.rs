//! A JSON-RPC message's envelope, read without building the rest: `method`, `id`, whether
//! there is an `error`, and from a `result` object only `isError`, `protocolVersion`,
//! `resultType` and `requestState` (the last two: a 2026-07-28 server's `input_required`). Most
//! messages a gateway sees are only forwarded; reading just this much keeps them cheap.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::source::StrictSeed;

/// The fields a gateway routes on. A key repeated among them is an error (serde's duplicate
/// field check), so the gateway and the server never route one message differently.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub error: Option<IgnoredAny>,
    #[serde(default)]
    pub result: Option<ResultHead>,
}

/// What a gateway needs from a `result`: `isError`, `protocolVersion`, `resultType` and
/// `requestState` at its top level.
#[derive(Debug, Default)]
pub(crate) struct ResultHead {
    pub is_error: bool,
    pub protocol_version: Option<String>,
    /// `resultType` is `input_required`.
    pub input_required: bool,
    /// `requestState`, when a string.
    pub request_state: Option<String>,
}

impl<'de> Deserialize<'de> for ResultHead {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResultVisitor)
    }
}

struct ResultVisitor;

impl<'de> Visitor<'de> for ResultVisitor {
    type Value = ResultHead;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC result")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResultHead, A::Error> {
        let mut head = ResultHead::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_ref() {
                "isError" => head.is_error = map.next_value::<Value>()? == Value::Bool(true),
                "protocolVersion" => {
                    if let Value::String(v) = map.next_value::<Value>()? {
                        head.protocol_version = Some(v);
                    }
                }
                "resultType" => {
                    head.input_required =
                        map.next_value::<Value>()?.as_str() == Some(super::INPUT_REQUIRED);
                }
                "requestState" => {
                    if let Value::String(v) = map.next_value::<Value>()? {
                        head.request_state = Some(v);
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(head)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ResultHead, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ResultHead::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
    fn visit_unit<E>(self) -> Result<ResultHead, E> {
        Ok(ResultHead::default())
    }
}

/// A string borrowed from the message where it has no escapes (serde's own `Cow<str>` always
/// copies).
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

/// A `tools/call` request read into the fields the gateway decides on, in one pass and
/// without building the rest: `id`, `params.name`, `params.arguments` and `params._meta`
/// (the last two as values, read strictly: a repeated key is an error).
///
/// Only the plain shape is read here: an object with no keys but `jsonrpc` (a string),
/// `id`, `method` (`tools/call`) and `params` (an object with no keys but `name`, a string,
/// `arguments`, an object or null, and `_meta`). Anything else, a repeated key among these,
/// or text the reader refuses gives `None`, and the caller reads the message whole, which
/// decides the same and says what is wrong.
#[derive(Debug)]
pub(crate) struct CallRequest<'a> {
    /// The id, unless absent or null.
    pub id: Option<Value>,
    pub tool: Cow<'a, str>,
    pub arguments: Option<Value>,
    pub meta: Option<Value>,
}

impl<'a> CallRequest<'a> {
    pub(crate) fn read(line: &'a [u8]) -> Option<CallRequest<'a>> {
        // Read from the bytes: every string of the plain shape is read (none is skipped),
        // and a string that is not UTF-8 is an error, as for the full reader.
        let mut de = serde_json::Deserializer::from_slice(line);
        let request = de::Deserializer::deserialize_map(&mut de, CallVisitor).ok()?;
        de.end().ok()?;
        Some(request)
    }
}

/// Repeated or unexpected keys: the full reader decides.
fn unexpected<E: de::Error>() -> E {
    E::custom("not the plain shape of a tool call")
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = CallRequest<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tools/call request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CallRequest<'de>, A::Error> {
        let (mut jsonrpc, mut id, mut method, mut params) = (false, None, None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_ref() {
                "jsonrpc" if !jsonrpc => {
                    map.next_value::<Text<'de>>()?;
                    jsonrpc = true;
                }
                "id" if id.is_none() => id = Some(map.next_value_seed(StrictSeed)?),
                "method" if method.is_none() => {
                    let m = map.next_value::<Text<'de>>()?;
                    if m.0 != "tools/call" {
                        return Err(unexpected());
                    }
                    method = Some(m);
                }
                "params" if params.is_none() => params = Some(map.next_value_seed(ParamsSeed)?),
                _ => return Err(unexpected()),
            }
        }
        let (Some(_), Some((tool, arguments, meta))) = (method, params) else {
            return Err(unexpected());
        };
        Ok(CallRequest {
            id: id.filter(|id| !id.is_null()),
            tool,
            arguments,
            meta,
        })
    }
}

struct ParamsSeed;

type Params<'a> = (Cow<'a, str>, Option<Value>, Option<Value>);

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Params<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Params<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tools/call params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params<'de>, A::Error> {
        let (mut name, mut arguments, mut meta) = (None, None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.0.as_ref() {
                "name" if name.is_none() => name = Some(map.next_value::<Text<'de>>()?.0),
                "arguments" if arguments.is_none() => {
                    let value = map.next_value_seed(StrictSeed)?;
                    if !matches!(value, Value::Null | Value::Object(_)) {
                        return Err(unexpected());
                    }
                    arguments = Some(value);
                }
                "_meta" if meta.is_none() => meta = Some(map.next_value_seed(StrictSeed)?),
                _ => return Err(unexpected()),
            }
        }
        let name = name.ok_or_else(unexpected)?;
        Ok((name, arguments.filter(Value::is_object), meta))
    }
}

impl<'a> Envelope<'a> {
    /// Reads the envelope of one JSON object message; `None` when the line is not a single
    /// well-formed JSON object within the reader's limits (the caller then reads it whole,
    /// which says what is wrong).
    pub(crate) fn read(line: &'a [u8]) -> Option<Envelope<'a>> {
        let text = std::str::from_utf8(line).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// The id, unless absent or null.
    pub(crate) fn id(&self) -> Option<&Value> {
        self.id.as_ref().filter(|id| !id.is_null())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_the_routing_fields() {
        let e = Envelope::read(
            br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"}],"isError":true}}"#,
        )
        .unwrap();
        assert_eq!(e.id(), Some(&Value::from(7)));
        assert!(e.method.is_none() && e.error.is_none());
        assert!(e.result.unwrap().is_error);
        let e = Envelope::read(
            br#"{"result":{"protocolVersion":"2025-11-25","capabilities":{}},"id":"a"}"#,
        )
        .unwrap();
        assert_eq!(
            e.result.unwrap().protocol_version.as_deref(),
            Some("2025-11-25")
        );
        let e = Envelope::read(
            br#"{"id":2,"result":{"requestState":"s-1","inputRequests":{},"resultType":"input_required"}}"#,
        )
        .unwrap();
        let head = e.result.unwrap();
        assert!(head.input_required);
        assert_eq!(head.request_state.as_deref(), Some("s-1"));
        let e = Envelope::read(br#"{"id":2,"result":{"resultType":"complete","requestState":7}}"#)
            .unwrap();
        let head = e.result.unwrap();
        assert!(!head.input_required && head.request_state.is_none());
        let e =
            Envelope::read(br#"{"method":"tools/call","id":null,"params":{"name":"x"}}"#).unwrap();
        assert_eq!(e.method.as_deref(), Some("tools/call"));
        assert_eq!(e.id(), None);
        assert!(Envelope::read(br#"{"id":1,"error":{"code":1},"result":5}"#).is_some());
    }

    #[test]
    fn anything_doubtful_is_left_to_the_full_reader() {
        for bad in [
            &br#"{"method":"tools/call","method":"ping","id":1}"#[..],
            br#"[{"method":"tools/call","id":1}]"#,
            br#"{"method":"ping","id":1"#,
            b"\xff{}",
            br#"{"method":"ping","id":1,"params":"\xff"}"#,
        ] {
            assert!(
                Envelope::read(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
