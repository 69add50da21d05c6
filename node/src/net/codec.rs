//! The framing of every imi protocol: one length-prefixed message per
//! stream (u32 big-endian length, then the bytes), read with a limit.

use std::io;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// Largest request accepted on an application protocol (a batch of
/// envelopes with attachments).
pub(crate) const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest response accepted on an application protocol.
pub(crate) const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Largest admission hello or answer (a certificate chain and the
/// revocation lists of the federation's CAs).
pub(crate) const MAX_ADMISSION_BYTES: usize = 256 * 1024;

/// Reads and writes one length-prefixed message per stream, refusing
/// messages over its limits.
#[derive(Debug, Clone)]
pub struct BytesCodec {
    request_limit: usize,
    response_limit: usize,
}

impl Default for BytesCodec {
    /// The limits of the application protocols.
    fn default() -> Self {
        BytesCodec {
            request_limit: MAX_REQUEST_BYTES,
            response_limit: MAX_RESPONSE_BYTES,
        }
    }
}

impl BytesCodec {
    /// A codec refusing requests over `request_limit` bytes and responses
    /// over `response_limit` bytes.
    pub fn with_limits(request_limit: usize, response_limit: usize) -> Self {
        BytesCodec {
            request_limit,
            response_limit,
        }
    }
}

/// Reads one frame. The buffer grows with the bytes that actually arrive,
/// so a length prefix alone costs nothing.
pub(crate) async fn read_frame<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the limit of {limit}"),
        ));
    }
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("message ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_frame(io, self.request_limit).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_frame(io, self.response_limit).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_cut_short_is_an_error() {
        // Claims 8 MiB, sends 3 bytes and stops.
        let mut bytes = (8u32 * 1024 * 1024).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut io = futures::io::Cursor::new(bytes);
        let err = read_frame(&mut io, MAX_REQUEST_BYTES).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_before_reading_it() {
        let bytes = (MAX_ADMISSION_BYTES as u32 + 1).to_be_bytes().to_vec();
        let mut io = futures::io::Cursor::new(bytes);
        let err = read_frame(&mut io, MAX_ADMISSION_BYTES).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
