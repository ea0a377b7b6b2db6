//! The heartbeat wire format of the upstream Krill SDKs: one compact JSON object per
//! line, `{"type":"heartbeat","service":"S","status":"healthy"|"degraded","metadata":{...}}`.
//! Clients never read from the socket.

use std::collections::BTreeMap;

/// Longest line accepted, in bytes (newline excluded). Real heartbeats are ~100 bytes.
pub const MAX_LINE: usize = 4096;

/// A heartbeat's health status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub service: String,
    pub status: Status,
    pub metadata: BTreeMap<String, String>,
}

impl Heartbeat {
    /// The degraded reason (`metadata.reason`), if any.
    pub fn reason(&self) -> Option<&str> {
        self.metadata.get("reason").map(String::as_str)
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    service: String,
    status: Status,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("line longer than {MAX_LINE} bytes")]
    Oversized,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
}

/// Parses one line (without its newline).
pub fn parse(line: &[u8]) -> Result<Heartbeat, Refused> {
    if line.len() > MAX_LINE {
        return Err(Refused::Oversized);
    }
    let w: Wire = serde_json::from_slice(line).map_err(|e| Refused::Malformed(e.to_string()))?;
    if w.kind != "heartbeat" {
        return Err(Refused::UnknownType(w.kind));
    }
    Ok(Heartbeat {
        service: w.service,
        status: w.status,
        metadata: w.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_exact_bytes_of_the_upstream_sdks() {
        let h = parse(br#"{"type":"heartbeat","service":"S","status":"healthy","metadata":{}}"#)
            .unwrap();
        assert_eq!(
            h,
            Heartbeat {
                service: "S".into(),
                status: Status::Healthy,
                metadata: BTreeMap::new()
            }
        );
        let d = parse(br#"{"type":"heartbeat","service":"S","status":"degraded","metadata":{"reason":"low battery"}}"#).unwrap();
        assert_eq!(d.status, Status::Degraded);
        assert_eq!(d.reason(), Some("low battery"));
        let m = parse(br#"{"type":"heartbeat","service":"S","status":"healthy","metadata":{"fps":"30","temp":"41"}}"#).unwrap();
        assert_eq!(m.metadata.len(), 2);
    }

    #[test]
    fn refuses_what_is_not_a_heartbeat() {
        assert!(matches!(parse(b"not json"), Err(Refused::Malformed(_))));
        assert!(matches!(
            parse(br#"{"type":"heartbeat","service":"S","status":"great"}"#),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"type":"heartbeat","service":"S","status":"healthy","extra":1}"#),
            Err(Refused::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"type":"heartbeat","status":"healthy"}"#),
            Err(Refused::Malformed(_))
        ));
        assert_eq!(
            parse(br#"{"type":"shutdown","service":"S","status":"healthy"}"#),
            Err(Refused::UnknownType("shutdown".into()))
        );
        assert_eq!(parse(&vec![b' '; MAX_LINE + 1]), Err(Refused::Oversized));
    }
}
