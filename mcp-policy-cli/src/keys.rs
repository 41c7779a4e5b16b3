//! Callers by credential: the gateway's keys file, and `mcp-policy keys hash`.
//!
//! The file holds no token, only its SHA-256 digest (lowercase hex), and what the token stands
//! for: a grant id and the grant's attributes.
//!
//! ```json
//! {"keys": [
//!   {"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
//!    "grant": "alice", "attrs": {"team": "sec"}}
//! ]}
//! ```
//!
//! A presented token is hashed and compared with every digest in the file, each comparison in
//! constant time and none skipped, so the time taken says nothing about how close a guess was.

use std::io::BufRead;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{OK, UNUSABLE};

/// One credential: what a token stands for.
#[derive(Debug, Clone)]
pub struct Key {
    digest: [u8; 32],
    /// `key:` and the digest as hex: names the credential without revealing it.
    pub principal: std::sync::Arc<str>,
    /// The grant id calls are decided for.
    pub grant: String,
    /// The grant's attributes (`grant.attrs.*` in conditions).
    pub attrs: Map<String, Value>,
}

/// The credentials of a keys file.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    keys: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    sha256: String,
    grant: String,
    #[serde(default)]
    attrs: Map<String, Value>,
    /// Free text for the operator (who holds the token, when it was issued).
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// The SHA-256 digest of a token, as stored in a keys file.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Keys {
    /// Parses a keys file's text.
    pub fn parse(text: &str) -> Result<Keys, String> {
        let doc: FileDoc =
            serde_json::from_str(text).map_err(|e| format!("not a keys file: {e}"))?;
        let mut keys: Vec<Key> = Vec::with_capacity(doc.keys.len());
        for (n, entry) in doc.keys.into_iter().enumerate() {
            let Some(digest) = parse_digest(&entry.sha256) else {
                return Err(format!(
                    "keys[{n}].sha256: expected 64 hex digits (the SHA-256 of the token; `mcp-policy keys hash` prints it)"
                ));
            };
            if entry.grant.is_empty() {
                return Err(format!("keys[{n}].grant: empty"));
            }
            if keys.iter().any(|k| k.digest == digest) {
                return Err(format!("keys[{n}].sha256: the same digest appears twice"));
            }
            keys.push(Key {
                digest,
                principal: format!("key:{}", hex(&digest)).into(),
                grant: entry.grant,
                attrs: entry.attrs,
            });
        }
        Ok(Keys { keys })
    }

    /// Reads and parses a keys file.
    pub fn load(path: &Path) -> Result<Keys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the keys file: {e}", path.display()))?;
        Keys::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How many credentials.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The credential a token stands for, and its index: every digest is compared, each in
    /// constant time.
    pub fn lookup(&self, token: &str) -> Option<(usize, &Key)> {
        let presented = digest(token);
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            let equal: bool = key.digest.ct_eq(&presented).into();
            if equal && found.is_none() {
                found = Some((i, key));
            }
        }
        found
    }

    /// The credential at `index`.
    pub fn get(&self, index: usize) -> Option<&Key> {
        self.keys.get(index)
    }
}

/// Runs `keys hash [TOKEN]`: prints the SHA-256 digest of TOKEN (or of the first line of
/// standard input, which keeps the token out of the process list and shell history).
pub fn hash_command(token: Option<&str>) -> u8 {
    let token = match token {
        Some(t) => t.to_owned(),
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
                eprintln!("mcp-policy keys hash: cannot read standard input: {e}");
                return UNUSABLE;
            }
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if token.is_empty() {
        eprintln!("mcp-policy keys hash: the token is empty");
        return UNUSABLE;
    }
    println!("{}", hex(&digest(&token)));
    OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_digest() {
        let text = format!(
            r#"{{"keys":[{{"sha256":"{}","grant":"alice","attrs":{{"team":"sec"}},"note":"laptop"}},
                        {{"sha256":"{}","grant":"bob"}}]}}"#,
            hex(&digest("tok-a")),
            hex(&digest("tok-b")).to_uppercase()
        );
        let keys = Keys::parse(&text).unwrap();
        assert_eq!(keys.len(), 2);
        let (_, a) = keys.lookup("tok-a").unwrap();
        assert_eq!(a.grant, "alice");
        assert_eq!(&*a.principal, format!("key:{}", hex(&digest("tok-a"))));
        assert_eq!(a.attrs["team"], "sec");
        assert_eq!(keys.lookup("tok-b").unwrap().0, 1);
        assert_eq!(keys.get(1).unwrap().grant, "bob");
        assert!(keys.lookup("tok-c").is_none());
        assert!(keys.lookup("").is_none());
    }

    #[test]
    fn refuses_bad_files() {
        assert!(Keys::parse(r#"{"keys":[{"sha256":"abc","grant":"a"}]}"#).is_err());
        assert!(Keys::parse(r#"{"keys":[{"token":"x","grant":"a"}]}"#).is_err());
        let d = hex(&digest("x"));
        let dup = format!(
            r#"{{"keys":[{{"sha256":"{d}","grant":"a"}},{{"sha256":"{d}","grant":"b"}}]}}"#
        );
        assert!(Keys::parse(&dup).is_err());
        let empty = format!(r#"{{"keys":[{{"sha256":"{d}","grant":""}}]}}"#);
        assert!(Keys::parse(&empty).is_err());
    }
}
