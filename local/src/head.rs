//! A request's head before the HTTP layer reads it: targets and header blocks over the limits are answered
//! in the envelope (the HTTP layer would send a bare 414 or 431), well-formed heads are handed on.

use std::time::{Duration, Instant};

use meters::domain::FieldError;
use meters::http::{ApiError, refuse};

/// The longest request line target and header block answered normally. Larger ones are answered 414 or 431
/// in the envelope as soon as they pass the limit, however much more the client sends.
pub const MAX_URI_BYTES: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

pub(crate) fn check_head(request: &axum::extract::Request) -> Result<(), ApiError> {
    let uri_bytes = request.uri().to_string().len();
    if uri_bytes > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong {
            limit_bytes: MAX_URI_BYTES,
        });
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit_bytes: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// Reads a connection's first request head before the HTTP layer does: a target or header block too large for
/// it is answered here, in the envelope (the HTTP layer would send a bare 414 or 431); anything else is handed
/// on with the bytes already read. `None`: answered, or the client sent no complete head in time.
pub(crate) async fn screen_first_head(
    mut stream: tokio::net::TcpStream,
    header_read_timeout: Duration,
) -> Option<Replayed<tokio::net::TcpStream>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    enum Screened {
        Complete,
        Refused(ApiError),
        Gone,
    }
    let mut head = Vec::with_capacity(1024);
    let read_head = async {
        let mut chunk = [0u8; 8192];
        // Where the request line ends, once seen; only the bytes each read adds are searched, so a client
        // sending a 2 MiB head costs one pass over it, not one per read.
        let mut line_length = None;
        loop {
            let searched_up_to = head.len().saturating_sub(3);
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Screened::Gone,
                Ok(read) => head.extend_from_slice(&chunk[..read]),
            }
            let fresh = &head[searched_up_to..];
            if line_length.is_none() {
                // HTTP/1.1 lines end in CRLF; a bare LF is accepted too, as the HTTP layer accepts it.
                line_length = fresh
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|at| searched_up_to + at);
            }
            if line_length.unwrap_or(head.len()) > MAX_URI_BYTES + 32 {
                return Screened::Refused(ApiError::UriTooLong {
                    limit_bytes: MAX_URI_BYTES,
                });
            }
            if head.len() > MAX_HEADER_BYTES + line_length.unwrap_or(head.len()) + 4 {
                return Screened::Refused(ApiError::HeadersTooLarge {
                    limit_bytes: MAX_HEADER_BYTES,
                });
            }
            if ends_a_head(fresh) {
                return Screened::Complete;
            }
        }
    };
    let error = match tokio::time::timeout(header_read_timeout, read_head).await {
        // Within the limits and well-formed: hyper reads the head again from here, and the rest of the
        // connection. Malformed ones are answered here, as the HTTP layer would answer them without a body.
        Ok(Screened::Complete) => {
            // As many header slots as the HTTP layer has: a head it would refuse is refused here.
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&head) {
                Ok(_) => match framing_fault(request.headers) {
                    None => return Some(Replayed::new(head, stream)),
                    Some(fault) => ApiError::Invalid(fault),
                },
                Err(httparse::Error::TooManyHeaders) => ApiError::HeadersTooLarge {
                    limit_bytes: MAX_HEADER_BYTES,
                },
                Err(_) => ApiError::Invalid(FieldError::new(
                    "request",
                    "is not a well-formed HTTP/1.1 request",
                )),
            }
        }
        Ok(Screened::Refused(error)) => error,
        Ok(Screened::Gone) | Err(_) => return None,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    // Nothing of the head was parsed: route and method are unknown ("-", as access logs write it).
    let response = refuse(error, &request_id, "-", "-", started).await;
    let mut raw = format!(
        "HTTP/1.1 {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        response.status(),
        response.body().len()
    );
    for (name, value) in response.headers() {
        raw.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().unwrap_or_default()
        ));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(response.body().as_ref());
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
    None
}

/// A stream whose first bytes were already read: they are read again, then the rest of the stream.
pub(crate) struct Replayed<S> {
    prefix: Vec<u8>,
    position: usize,
    inner: S,
}

impl<S> Replayed<S> {
    fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            position: 0,
            inner,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Replayed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.position < self.prefix.len() {
            let take = buf.remaining().min(self.prefix.len() - self.position);
            let start = self.position;
            buf.put_slice(&self.prefix[start..start + take]);
            self.position += take;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Replayed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The most header fields a request may have: the HTTP layer's own limit.
pub(crate) const MAX_HEADERS: usize = 100;

/// What is wrong with how a head says its body is framed, which the HTTP layer would refuse with a bare
/// 400: a `Content-Length` that is no number, is given twice with different values, or holds a list
/// (`2, 2`, which RFC 9110 lets a recipient read as 2 but hyper refuses), a
/// `Transfer-Encoding` whose last coding is not `chunked`, or both headers at once (a request smuggler's
/// favourite).
fn framing_fault(headers: &[httparse::Header<'_>]) -> Option<FieldError> {
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| {
                std::str::from_utf8(header.value)
                    .unwrap_or("\u{fffd}")
                    .trim()
            })
            .collect()
    };
    let lengths = values("content-length");
    let encodings = values("transfer-encoding");
    if !lengths.is_empty() && !encodings.is_empty() {
        return Some(FieldError::new(
            "Transfer-Encoding",
            "cannot be sent with Content-Length",
        ));
    }
    if lengths.iter().any(|value| value.contains(',')) {
        return Some(FieldError::new(
            "Content-Length",
            "must be one number of bytes, not a list",
        ));
    }
    let numbers: Option<Vec<u64>> = lengths
        .iter()
        .map(|length| {
            length
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| length.parse().ok())
                .flatten()
        })
        .collect();
    match numbers {
        None => {
            return Some(FieldError::new(
                "Content-Length",
                "must be a number of bytes",
            ));
        }
        Some(numbers) if numbers.windows(2).any(|pair| pair[0] != pair[1]) => {
            return Some(FieldError::new("Content-Length", "must be given once"));
        }
        Some(_) => {}
    }
    let last_coding = encodings
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|coding| !coding.is_empty());
    if !encodings.is_empty()
        && !last_coding.is_some_and(|coding| coding.eq_ignore_ascii_case("chunked"))
    {
        return Some(FieldError::new(
            "Transfer-Encoding",
            "must end with chunked, the only coding this server reads",
        ));
    }
    None
}

/// Whether `bytes` hold the blank line that ends a request head: CRLF CRLF, or bare LFs (with or without
/// the CR of either line).
fn ends_a_head(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(at, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(at + 2) == Some(&b'\n')))
}

#[cfg(test)]
mod tests {
    use super::ends_a_head;

    #[test]
    fn a_head_ends_at_a_blank_line_of_crlf_or_bare_lf() {
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(ends_a_head(b"GET / HTTP/1.1\nHost: a\n\n"));
        assert!(ends_a_head(b"GET / HTTP/1.1\r\nHost: a\n\r\n"));
        assert!(!ends_a_head(b"GET / HTTP/1.1\r\nHost: a\r\n"));
        assert!(!ends_a_head(b"GET / HTTP/1.1\nHost: a\n"));
    }
}
