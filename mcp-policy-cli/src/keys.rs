//! `mcp-policy keys hash [TOKEN]`: the SHA-256 digest of a token, as the HTTP gateway's keys
//! file stores it.

use std::io::BufRead;

use mcp_policy_gateway::keys::{digest, hex};

use crate::exit::{OK, UNUSABLE};

/// Prints the SHA-256 digest of TOKEN (or of the first line of standard input, which keeps
/// the token out of the process list and shell history).
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
