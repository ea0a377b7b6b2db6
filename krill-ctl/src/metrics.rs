//! `krill-ctl metrics`: Prometheus metrics ([`krill::runtime::metrics`]) of the
//! status report `krill status` prints and of the supervisor's counters. With
//! `--http` it answers one HTTP request on stdin/stdout, as `krill-metrics@.service`
//! runs it for each connection to the opt-in `krill-metrics.socket`
//! (127.0.0.1:9464): a process per scrape, nothing resident, no new daemon.

use std::io::{Read, Write};

use crate::error::Error;

/// The most of a request that is read (8 KiB): the request line and headers.
pub const MAX_REQUEST: usize = 8192;

/// OpenMetrics, which Prometheus asks for and reads (prometheus-client writes it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics text now.
pub fn scrape() -> Result<String, Error> {
    let report = crate::status::gather(None).map_err(|e| Error::Status(Box::new(e)))?;
    let stats =
        crate::bus::with_system(|conn| async move { crate::bus::supervisor_stats(&conn).await })
            .ok();
    Ok(krill::runtime::metrics::render(&report, stats.as_ref()))
}

/// What an HTTP request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics` (or `HEAD`, without a body).
    Metrics {
        head: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Reads a request head (at most [`MAX_REQUEST`] bytes, up to the blank line) and
/// says what it asks for. The body, if any, is ignored.
pub fn read_request(input: &mut impl Read) -> Request {
    let mut head = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while head.len() < MAX_REQUEST && !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        match input.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Request::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::BadRequest;
    }
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Request::Metrics {
            head: method == "HEAD",
        },
        ("GET" | "HEAD", _) => Request::NotFound,
        _ => Request::MethodNotAllowed,
    }
}

/// Answers one request from `input` on `output`.
pub fn serve_http(input: &mut impl Read, output: &mut impl Write) -> std::io::Result<()> {
    let (status, ctype, body, head) = match read_request(input) {
        Request::Metrics { head } => match scrape() {
            Ok(text) => ("200 OK", CONTENT_TYPE, text, head),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("{e}\n"),
                false,
            ),
        },
        Request::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "krill serves /metrics only\n".into(),
            false,
        ),
        Request::MethodNotAllowed => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics\n".into(),
            false,
        ),
        Request::BadRequest => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "not an HTTP/1 request\n".into(),
            false,
        ),
    };
    write!(
        output,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head {
        output.write_all(body.as_bytes())?;
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Request {
        read_request(&mut s.as_bytes())
    }

    #[test]
    fn requests_are_read_bounded_and_strictly() {
        assert_eq!(
            req("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            req("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(req("GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            req("POST /metrics HTTP/1.1\r\n\r\n"),
            Request::MethodNotAllowed
        );
        assert_eq!(req("\u{0}\u{1}garbage"), Request::BadRequest);
        assert_eq!(req("GET /metrics SPDY/9\r\n\r\n"), Request::BadRequest);
        // An endless header is cut at MAX_REQUEST, and still answered.
        let endless = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(1 << 20));
        let mut r = endless.as_bytes();
        assert_eq!(read_request(&mut r), Request::Metrics { head: false });
        assert_eq!(r.len(), endless.len() - MAX_REQUEST);
    }

    #[test]
    fn errors_are_answered_with_their_status() {
        let mut out = vec![];
        serve_http(&mut "PUT / HTTP/1.1\r\n\r\n".as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{out}"
        );
        assert!(out.ends_with("\r\n\r\nGET /metrics\n"), "{out}");
    }
}
