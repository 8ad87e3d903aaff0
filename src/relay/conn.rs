//! One STOMP-over-TCP connection to the external broker, wsbroker being the client: connect
//! with CONNECT/CONNECTED, then frames in both directions with heart-beats. Shared by the
//! session links and the system connection; uses the same codec as the server side.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout};

use super::config::RelayConfig;
use super::frames;
use crate::stomp::decoder::{Decoded, Decoder, FrameLimits};
use crate::stomp::encoder::{HEARTBEAT, encode};
use crate::stomp::frame::{Command, Frame};
use crate::stomp::version::Version;

/// An open broker connection.
pub(crate) struct BrokerConn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
    out: BytesMut,
    decoder: Decoder,
    version: Version,
    /// Send something at least this often (None: no heart-beats from us).
    pub send_every: Option<Duration>,
    /// The broker promised to send this often; silence for twice that means it is gone.
    pub expect_every: Option<Duration>,
    /// When something was last read / written.
    pub last_read: Instant,
    pub last_write: Instant,
}

/// Why opening a broker connection failed, as told to clients and the host.
pub(crate) type OpenError = String;

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}

impl BrokerConn {
    /// Connects to the broker and logs in; fails after `config.connect_timeout`.
    pub(crate) async fn open(
        config: &RelayConfig,
        login: &str,
        passcode: &str,
        version: Version,
        limits: FrameLimits,
    ) -> Result<BrokerConn, OpenError> {
        let address = config.broker.as_str();
        let connect_and_log_in = async {
            let mut conn = Self::connect(config, version, limits).await?;
            conn.log_in(config, login, passcode).await?;
            Ok(conn)
        };
        match timeout(config.connect_timeout, connect_and_log_in).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the message broker at {address} did not answer within {} s",
                config.connect_timeout.as_secs_f32()
            )),
        }
    }

    /// The TCP connection to the broker, not logged in yet.
    async fn connect(
        config: &RelayConfig,
        version: Version,
        limits: FrameLimits,
    ) -> Result<BrokerConn, OpenError> {
        let address = config.broker.as_str();
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to the message broker at {address}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let now = Instant::now();
        Ok(BrokerConn {
            reader,
            writer,
            buf: BytesMut::with_capacity(4096),
            out: BytesMut::new(),
            decoder: Decoder::new(limits),
            version,
            send_every: None,
            expect_every: None,
            last_read: now,
            last_write: now,
        })
    }

    /// Sends CONNECT and waits for CONNECTED; then speaks the negotiated version and
    /// heart-beats.
    async fn log_in(
        &mut self,
        config: &RelayConfig,
        login: &str,
        passcode: &str,
    ) -> Result<(), OpenError> {
        let address = config.broker.as_str();
        let version = self.version;
        let ours = (
            millis(config.heartbeat_send),
            millis(config.heartbeat_receive),
        );
        let connect = frames::connect_frame(login, passcode, config.host_header(), version, ours);
        self.write(&connect)
            .await
            .map_err(|e| format!("the message broker at {address} closed the connection: {e}"))?;
        let reply = loop {
            match self.read().await {
                Ok(Some(Decoded::Frame(frame))) => break frame,
                Ok(Some(Decoded::Heartbeat)) => continue,
                Ok(None) => {
                    return Err(format!(
                        "the message broker at {address} closed the connection during login"
                    ));
                }
                Err(e) => return Err(format!("the message broker at {address} failed: {e}")),
            }
        };
        match reply.command {
            Command::Connected => {}
            Command::Error => {
                let message = reply.header("message").unwrap_or("no reason given");
                return Err(format!(
                    "the message broker refused the connection: {message}"
                ));
            }
            other => {
                return Err(format!(
                    "the message broker answered CONNECT with {}",
                    other.as_str()
                ));
            }
        }
        self.decoder.set_version(version);
        if version != Version::V1_0 {
            let hb = frames::client_side_heartbeat(ours, &reply);
            let ms = |v: u32| (v > 0).then(|| Duration::from_millis(u64::from(v)));
            self.send_every = ms(hb.send_ms);
            self.expect_every = ms(hb.receive_ms);
        }
        Ok(())
    }

    /// The next frame or heart-beat; `None` when the broker closed the connection.
    /// Cancel-safe: bytes read stay in the buffer for the next call.
    pub(crate) async fn read(&mut self) -> io::Result<Option<Decoded>> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(decoded)) => {
                    self.last_read = Instant::now();
                    return Ok(Some(decoded));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("malformed frame from the message broker: {e}"),
                    ));
                }
            }
            if self.reader.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
            self.last_read = Instant::now();
        }
    }

    /// Writes one frame.
    pub(crate) async fn write(&mut self, frame: &Frame) -> io::Result<()> {
        self.out.clear();
        encode(frame, self.version, &mut self.out);
        self.writer.write_all(&self.out).await?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Writes a heart-beat EOL.
    pub(crate) async fn write_heartbeat(&mut self) -> io::Result<()> {
        self.writer.write_all(HEARTBEAT).await?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// When the next heart-beat is due, or when the broker counts as gone; far away without
    /// heart-beats.
    pub(crate) fn next_deadline(&self) -> Instant {
        let mut deadline = Instant::now() + Duration::from_secs(3600);
        if let Some(every) = self.send_every {
            deadline = deadline.min(self.last_write + every);
        }
        if let Some(every) = self.expect_every {
            deadline = deadline.min(self.last_read + every * 2);
        }
        deadline
    }

    /// Acts on heart-beat timers: sends one when due; an error when the broker went silent.
    pub(crate) async fn on_timer(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if let Some(every) = self.expect_every
            && now >= self.last_read + every * 2
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no heart-beat from the message broker for {} ms",
                    (every * 2).as_millis()
                ),
            ));
        }
        if let Some(every) = self.send_every
            && now >= self.last_write + every
        {
            self.write_heartbeat().await?;
        }
        Ok(())
    }

    /// Says goodbye (best effort, bounded).
    pub(crate) async fn close(mut self) {
        let bye = Frame::new(Command::Disconnect);
        let _ = timeout(Duration::from_secs(1), async {
            self.write(&bye).await?;
            self.writer.shutdown().await
        })
        .await;
    }
}
