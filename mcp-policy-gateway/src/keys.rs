//! Callers by credential: the HTTP gateway's keys file (`mcp-policy keys hash` prints a
//! token's digest with [`digest`] and [`hex`]).
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
//! A presented token is hashed; the digests in the file that begin with the same 8 bytes (a
//! hash table finds them, so a lookup costs the same with ten keys or a hundred thousand) are
//! compared with it in full, in constant time. The time taken can only tell whether some
//! stored digest shares the presented one's first 64 bits, which no guess can aim at (that
//! is a 2^64 preimage search on SHA-256), and never how close a guess was.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
    /// The first 8 bytes of each digest → the keys whose digest begins so.
    by_prefix: HashMap<u64, Vec<usize>>,
}

/// The first 8 bytes of a digest, as the hash table's key.
fn prefix(digest: &[u8; 32]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(head)
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

/// A digest as the keys file writes it: 64 lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
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
    ///
    /// ```
    /// use mcp_policy_gateway::keys::{Keys, digest, hex};
    /// let file = format!(r#"{{"keys":[{{"sha256":"{}","grant":"alice","attrs":{{"team":"sec"}}}}]}}"#,
    ///                    hex(&digest("tok-a")));
    /// let keys = Keys::parse(&file).unwrap();
    /// let (_, key) = keys.lookup("tok-a").unwrap();
    /// assert_eq!(key.grant, "alice");
    /// assert!(keys.lookup("tok-b").is_none());
    /// assert!(Keys::parse(r#"{"keys":[{"sha256":"nothex","grant":"a"}]}"#).is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Keys, String> {
        let doc: FileDoc =
            serde_json::from_str(text).map_err(|e| format!("not a keys file: {e}"))?;
        let mut keys: Vec<Key> = Vec::with_capacity(doc.keys.len());
        let mut by_prefix: HashMap<u64, Vec<usize>> = HashMap::with_capacity(doc.keys.len());
        for (n, entry) in doc.keys.into_iter().enumerate() {
            let Some(digest) = parse_digest(&entry.sha256) else {
                return Err(format!(
                    "keys[{n}].sha256: expected 64 hex digits (the SHA-256 of the token; `mcp-policy keys hash` prints it)"
                ));
            };
            if entry.grant.is_empty() {
                return Err(format!("keys[{n}].grant: empty"));
            }
            let same = by_prefix.entry(prefix(&digest)).or_default();
            if same
                .iter()
                .any(|&i| keys.get(i).is_some_and(|k| k.digest == digest))
            {
                return Err(format!("keys[{n}].sha256: the same digest appears twice"));
            }
            same.push(keys.len());
            keys.push(Key {
                digest,
                principal: format!("key:{}", hex(&digest)).into(),
                grant: entry.grant,
                attrs: entry.attrs,
            });
        }
        Ok(Keys { keys, by_prefix })
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

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The credential a token stands for, and its index: the digests that share the
    /// presented one's first 8 bytes are compared in full, each in constant time.
    pub fn lookup(&self, token: &str) -> Option<(usize, &Key)> {
        let presented = digest(token);
        let mut found = None;
        for &i in self.by_prefix.get(&prefix(&presented))? {
            let Some(key) = self.keys.get(i) else {
                continue;
            };
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
    fn digests_sharing_a_prefix_are_told_apart() {
        // A stored digest that differs from tok-a's only in its last byte sits in tok-a's
        // bucket: the full comparison must pick the right one, whichever comes first.
        let real = digest("tok-a");
        let mut near = real;
        near[31] ^= 1;
        for order in [[near, real], [real, near]] {
            let text = format!(
                r#"{{"keys":[{{"sha256":"{}","grant":"first"}},{{"sha256":"{}","grant":"second"}}]}}"#,
                hex(&order[0]),
                hex(&order[1])
            );
            let keys = Keys::parse(&text).unwrap();
            let (i, key) = keys.lookup("tok-a").unwrap();
            assert_eq!(key.digest, real);
            assert_eq!(i, usize::from(order[0] != real));
        }
        // Many keys: each found at its own index, an unknown token at none.
        let n = 5000;
        let text = format!(
            r#"{{"keys":[{}]}}"#,
            (0..n)
                .map(|i| format!(
                    r#"{{"sha256":"{}","grant":"g{i}"}}"#,
                    hex(&digest(&format!("t{i}")))
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let keys = Keys::parse(&text).unwrap();
        for i in [0, 1, 2500, n - 1] {
            let (at, key) = keys.lookup(&format!("t{i}")).unwrap();
            assert_eq!((at, key.grant.as_str()), (i, format!("g{i}").as_str()));
        }
        assert!(keys.lookup(&format!("t{n}")).is_none());
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
