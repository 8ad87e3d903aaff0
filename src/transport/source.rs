//! Reading with buffers that exist only while bytes are in flight.
//!
//! A connection waits for readiness with no buffer reserved, and reserves one only when the
//! socket has data; combined with releasing the buffer once it is drained, an idle connection
//! holds no read buffer at all.

use std::io;

use bytes::BytesMut;
use tokio::net::tcp::OwnedReadHalf;

/// Bytes reserved per read once data is ready.
const READ_CHUNK: usize = 8 * 1024;

/// A byte source the connection reader can wait on.
pub(crate) trait ReadSource: Send {
    /// Waits for data and appends it to `buf`; `Ok(0)` is end of stream.
    fn read_into(
        &mut self,
        buf: &mut BytesMut,
    ) -> impl std::future::Future<Output = io::Result<usize>> + Send;
}

impl ReadSource for OwnedReadHalf {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            buf.reserve(READ_CHUNK);
            match self.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
