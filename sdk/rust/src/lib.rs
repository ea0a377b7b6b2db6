//! Heartbeat client for services run by krill, byte-compatible with the upstream
//! Krill SDKs: one compact JSON object per line, keys in the order type, service,
//! status, metadata. The client never reads from the socket.
//!
//! ```no_run
//! let mut client = krill_sdk::KrillClient::from_env()?; // KRILL_SERVICE, KRILL_SOCKET
//! loop {
//!     client.heartbeat()?;
//!     std::thread::sleep(std::time::Duration::from_secs(1));
//! }
//! # Ok::<(), krill_sdk::Error>(())
//! ```
//!
//! Unlike upstream's tokio client this one is blocking and has no runtime
//! dependency; a heartbeat is one `write` of ~80 bytes.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Upstream's default socket path, used when `KRILL_SOCKET` is not set.
pub const DEFAULT_SOCKET: &str = "/tmp/krill.sock";

/// Errors of the client.
#[derive(Debug)]
pub enum Error {
    /// No service name given and `KRILL_SERVICE` unset.
    NoServiceName,
    /// Connecting or writing failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoServiceName => {
                f.write_str("no service name given and KRILL_SERVICE is not set")
            }
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// A connection to the supervisor's heartbeat socket.
pub struct KrillClient {
    service: String,
    path: PathBuf,
    stream: UnixStream,
}

/// The bytes of one message.
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

impl KrillClient {
    /// Connects to `path` for `service`.
    pub fn connect(service: &str, path: &Path) -> Result<KrillClient, Error> {
        let stream = UnixStream::connect(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(KrillClient {
            service: service.to_owned(),
            path: path.to_owned(),
            stream,
        })
    }

    /// Connects for `service` to `KRILL_SOCKET` (default `/tmp/krill.sock`).
    pub fn new(service: &str) -> Result<KrillClient, Error> {
        let path = std::env::var_os("KRILL_SOCKET")
            .map(PathBuf::from)
            .unwrap_or_else(|| DEFAULT_SOCKET.into());
        KrillClient::connect(service, &path)
    }

    /// Service name from `KRILL_SERVICE`, socket from `KRILL_SOCKET`: what krill sets.
    pub fn from_env() -> Result<KrillClient, Error> {
        let service = std::env::var("KRILL_SERVICE").map_err(|_| Error::NoServiceName)?;
        KrillClient::new(&service)
    }

    fn send(&mut self, status: &str, metadata: &BTreeMap<String, String>) -> Result<(), Error> {
        let bytes = encode(&self.service, status, metadata);
        self.stream.write_all(&bytes).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Reports the service healthy.
    pub fn heartbeat(&mut self) -> Result<(), Error> {
        self.send("healthy", &BTreeMap::new())
    }

    /// Same as [`KrillClient::heartbeat`].
    pub fn report_healthy(&mut self) -> Result<(), Error> {
        self.heartbeat()
    }

    /// Alive but degraded; `reason` shows in `krill status`.
    pub fn report_degraded(&mut self, reason: &str) -> Result<(), Error> {
        self.send(
            "degraded",
            &BTreeMap::from([("reason".to_owned(), reason.to_owned())]),
        )
    }

    /// A healthy heartbeat with metadata.
    pub fn heartbeat_with_metadata(
        &mut self,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.send("healthy", metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn sends_the_exact_upstream_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).unwrap();
            buf
        });
        {
            let mut c = KrillClient::connect("S", &path).unwrap();
            c.heartbeat().unwrap();
            c.report_degraded("low \"battery\"").unwrap();
            c.heartbeat_with_metadata(&BTreeMap::from([("fps".into(), "30".into())]))
                .unwrap();
            c.report_healthy().unwrap();
        }
        let got = String::from_utf8(t.join().unwrap()).unwrap();
        assert_eq!(
            got,
            concat!(
                "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"healthy\",\"metadata\":{}}\n",
                "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"degraded\",\"metadata\":{\"reason\":\"low \\\"battery\\\"\"}}\n",
                "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"healthy\",\"metadata\":{\"fps\":\"30\"}}\n",
                "{\"type\":\"heartbeat\",\"service\":\"S\",\"status\":\"healthy\",\"metadata\":{}}\n",
            )
        );
    }

    #[test]
    fn connect_errors_name_the_path() {
        let e = KrillClient::connect("S", Path::new("/nonexistent/k.sock"))
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("/nonexistent/k.sock: "), "{e}");
    }
}
