//! Reading with buffers that exist only while bytes are in flight.
//!
//! A connection waits for readiness with no buffer reserved, and reserves one only when the
//! socket has data; combined with releasing the buffer once it is drained, an idle connection
//! holds no read buffer at all.
//!
//! Readiness is only cleared by a read that would block, so the wait that follows a successful
//! read usually wakes at once, reserves, finds nothing and waits again: that reservation is
//! given back before waiting, or every idle connection would keep `READ_CHUNK` bytes.
//!
//! The wait is a plain poll of the socket's read readiness (the waker sits in the socket's
//! registration), so the future a connection keeps while idle is two references, not a
//! readiness future with its own waiter node.

use std::future::{Future, poll_fn};
use std::io;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, ReadHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_rustls::server::TlsStream;

/// Bytes reserved per read once data is ready.
const READ_CHUNK: usize = 8 * 1024;

/// Bytes reserved per read on a TLS connection.
const TLS_READ_CHUNK: usize = 4 * 1024;

/// A byte source the connection reader can wait on.
pub(crate) trait ReadSource: Send {
    /// Waits for data and appends it to `buf`; `Ok(0)` is end of stream.
    fn read_into(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send;
}

impl ReadSource for OwnedReadHalf {
    fn read_into(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send {
        poll_fn(move |cx| {
            let stream: &TcpStream = (*self).as_ref();
            loop {
                if let Err(e) = std::task::ready!(stream.poll_read_ready(cx)) {
                    return Poll::Ready(Err(e));
                }
                buf.reserve(READ_CHUNK);
                match self.try_read_buf(buf) {
                    Ok(n) => return Poll::Ready(Ok(n)),
                    // Readiness is cleared now: the next poll registers the waker.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if buf.is_empty() {
                            *buf = BytesMut::new();
                        }
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        })
    }
}

/// TLS has no readiness to wait on before reserving: rustls only knows whether plaintext is
/// there once records are read and decrypted into a caller's buffer. So a waiting TLS
/// connection holds a `TLS_READ_CHUNK` buffer while idle, on top of rustls' own per-connection
/// buffers (a few KiB more than an idle plain connection, which holds none).
impl ReadSource for ReadHalf<TlsStream<TcpStream>> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        buf.reserve(TLS_READ_CHUNK);
        self.read_buf(buf).await
    }
}
