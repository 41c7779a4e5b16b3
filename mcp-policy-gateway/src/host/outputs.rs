//! Carrying out what the core's [`Gateway`](mcp_policy::mcp::Gateway) says, for both hosts:
//! a call's record handed to the audit log first, then each other [`Output`] in order — the
//! message as read passed on, a message the gateway wrote sent to a side. A host says how a line reaches each side (a
//! [`Sides`]); what each output means is written here once.

use mcp_policy::mcp::Output;

use crate::host::audit::Audit;

/// How a host sends a line to each side.
pub trait Sides {
    /// Sends one message to the MCP server.
    fn to_server(&mut self, line: &[u8]);
    /// Sends one message to the client. `as_read`: `line` is the message exactly as it was
    /// read from the server (else one the gateway wrote).
    fn to_client(&mut self, line: &[u8], as_read: bool);
}

/// Carries out `outputs` for the message `line`, read from the client when `from_client`
/// (else from the server); whether anything went to the client.
///
/// ```
/// use mcp_policy::mcp::Output;
/// use mcp_policy_gateway::host::audit::Audit;
/// use mcp_policy_gateway::host::outputs::{Sides, carry_out};
///
/// #[derive(Default)]
/// struct Pipes { server: Vec<String>, client: Vec<String> }
/// impl Sides for Pipes {
///     fn to_server(&mut self, line: &[u8]) { self.server.push(String::from_utf8_lossy(line).into()) }
///     fn to_client(&mut self, line: &[u8], _as_read: bool) { self.client.push(String::from_utf8_lossy(line).into()) }
/// }
/// let mut pipes = Pipes::default();
/// let outputs = vec![Output::Forward, Output::ToClient(serde_json::json!({"id": 1}))];
/// assert!(carry_out(outputs, b"LINE", true, &Audit::open(None).unwrap(), &mut pipes));
/// assert_eq!(pipes.server, ["LINE"]);
/// assert_eq!(pipes.client, [r#"{"id":1}"#]);
/// ```
pub fn carry_out(
    outputs: Vec<Output>,
    line: &[u8],
    from_client: bool,
    audit: &Audit,
    sides: &mut impl Sides,
) -> bool {
    let mut outputs = outputs;
    // Records first: the log has each one before the client sees the call's answer.
    while let Some(at) = outputs.iter().position(|o| matches!(o, Output::Audit(_))) {
        if let Output::Audit(record) = outputs.remove(at) {
            audit.call(record);
        }
    }
    let mut to_client = false;
    for output in outputs {
        match output {
            Output::Forward if from_client => sides.to_server(line),
            Output::Forward => {
                sides.to_client(line, true);
                to_client = true;
            }
            Output::ToClient(v) => {
                sides.to_client(v.to_string().as_bytes(), false);
                to_client = true;
            }
            Output::ToServer(v) => sides.to_server(v.to_string().as_bytes()),
            Output::Audit(_) => {}
        }
    }
    to_client
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Default)]
    struct Seen(Vec<(&'static str, String, bool)>);

    impl Sides for Seen {
        fn to_server(&mut self, line: &[u8]) {
            self.0
                .push(("server", String::from_utf8_lossy(line).into(), false));
        }
        fn to_client(&mut self, line: &[u8], as_read: bool) {
            self.0
                .push(("client", String::from_utf8_lossy(line).into(), as_read));
        }
    }

    #[test]
    fn each_output_goes_where_it_says_in_order() {
        let audit = Audit::open(None).unwrap();
        let mut seen = Seen::default();
        let outputs = vec![
            Output::Forward,
            Output::ToClient(json!({"id": 1})),
            Output::ToServer(json!({"id": 2})),
        ];
        assert!(carry_out(outputs, b"L", true, &audit, &mut seen));
        assert_eq!(
            seen.0,
            [
                ("server", "L".into(), false),
                ("client", r#"{"id":1}"#.into(), false),
                ("server", r#"{"id":2}"#.into(), false)
            ]
        );
        let mut seen = Seen::default();
        assert!(carry_out(
            vec![Output::Forward],
            b"A",
            false,
            &audit,
            &mut seen
        ));
        assert_eq!(seen.0, [("client", "A".into(), true)]);
        let mut seen = Seen::default();
        assert!(!carry_out(vec![], b"A", false, &audit, &mut seen));
    }
}
