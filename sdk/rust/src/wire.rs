//! The bytes on the socket.

use std::collections::BTreeMap;

/// One message: `{"type":"heartbeat","service":…,"status":…,"metadata":{…}}` and a
/// newline; metadata keys sorted. Control characters are escaped by JSON, so a
/// message is always exactly one line.
pub fn encode(service: &str, status: &str, metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = b"{\"type\":\"heartbeat\",\"service\":".to_vec();
    out.extend(serde_json::to_string(service).unwrap_or_default().bytes());
    out.extend(b",\"status\":");
    out.extend(serde_json::to_string(status).unwrap_or_default().bytes());
    out.extend(b",\"metadata\":");
    out.extend(serde_json::to_string(metadata).unwrap_or_default().bytes());
    out.extend(b"}\n");
    out
}
