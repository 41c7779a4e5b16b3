//! `mcp-policy approve APPROVAL_ID --store URL`: records a human's approval in a shared
//! store (0 recorded; 1 unknown or expired; 2 usage or an unreachable store).

use mcp_policy::HostError;
use mcp_policy_gateway::{StoreUrl, store};

use crate::exit::{FAILURES, OK, UNUSABLE};

/// Runs `approve`.
pub fn run(id: &str, url: &str) -> u8 {
    let url = match StoreUrl::parse(url) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("mcp-policy approve: --store: {e}");
            return UNUSABLE;
        }
    };
    match store::approve(&url, id) {
        Ok(Ok(())) => {
            println!("approved {id}");
            OK
        }
        Ok(Err(e @ HostError::UnknownApproval(_))) => {
            eprintln!("mcp-policy approve: {e}");
            FAILURES
        }
        Ok(Err(e)) => {
            eprintln!("mcp-policy approve: {e}");
            UNUSABLE
        }
        Err(e) => {
            eprintln!("mcp-policy approve: {e}");
            UNUSABLE
        }
    }
}
