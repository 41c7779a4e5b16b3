//! The gateway's HTTP answers of its own: plain text, JSON-RPC errors with an HTTP status
//! (as the transport spec shows them), the 401 challenge, SSE headers, and reading `Accept`.

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use mcp_policy::mcp::error_response;
use serde_json::Value;

use crate::http::sse::{ResBody, full};

/// A plain-text answer.
pub fn plain(status: StatusCode, text: &str) -> Response<ResBody> {
    let mut res = Response::new(full(format!("{text}\n")));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// An HTTP error with a JSON-RPC error body (id null: no request could be read), as the
/// transport spec shows them.
pub fn refuse(status: StatusCode, code: i64, message: &str) -> Response<ResBody> {
    refuse_request(status, &Value::Null, code, message)
}

/// An HTTP error with a JSON-RPC error body answering the request with this `id`.
pub fn refuse_request(
    status: StatusCode,
    id: &Value,
    code: i64,
    message: &str,
) -> Response<ResBody> {
    json_response(
        status,
        Bytes::from(error_response(id, code, message).to_string()),
    )
}

/// A JSON answer.
pub fn json_response(status: StatusCode, body: Bytes) -> Response<ResBody> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// `401` with the bearer challenge.
pub fn unauthorized() -> Response<ResBody> {
    let mut res = refuse(
        StatusCode::UNAUTHORIZED,
        -32001,
        "Unauthorized: a valid credential is required",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"mcp-policy\""),
    );
    res
}

/// Marks an answer as an SSE stream.
pub fn sse_headers(res: &mut Response<ResBody>) {
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// Whether the request's `Accept` takes `kind` (or anything).
pub fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|v| {
            v.split(|b| *b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
        })
        .any(|v| v.eq_ignore_ascii_case(kind.as_bytes()) || v == b"*/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lists() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream;q=0.9"),
        );
        assert!(accepts(&h, "text/event-stream"));
        assert!(accepts(&h, "application/json"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts(&h, "text/event-stream"));
    }
}
