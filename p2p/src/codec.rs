//! The sync wire format: a u32 little-endian length, then the canonical bincode of a
//! [`Request`] or [`Response`]. The length is checked against the limit before anything is
//! allocated, and the payload is read through a cap, so a peer can never make us hold more than
//! the limit.

use std::io;

use bincode::Decode;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use taksa_consensus::codec;

use crate::{Request, Response, SYNC_REQUEST_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX};

/// Bytes of the length prefix.
const PREFIX_BYTES: usize = 4;
/// The buffer grows as data arrives, from at most this much, so a prefix alone reserves little.
const READ_RESERVE_BYTES_MAX: usize = 64 * 1024;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer announced more bytes than the limit.
    #[error("announced {len} bytes, over the limit of {max}")]
    TooLarge { len: u64, max: usize },
    /// The peer's bytes do not decode.
    #[error("does not decode: {0}")]
    Decode(taksa_consensus::Error),
    /// We were about to send more than the peer accepts; nothing was sent.
    #[error("refusing to send {len} bytes, over the limit of {max}")]
    OutgoingTooLarge { len: usize, max: usize },
}

/// An inbound request as read off the wire. libp2p reports a request that fails to read to
/// nobody, so refused bytes come through as a value, which lets the swarm task charge the peer.
#[derive(Debug)]
pub(crate) enum RequestFrame {
    Valid(Request),
    Invalid(WireError),
}

/// The peer's fault, if `error` (from reading a response) is one: bytes over the limit or that
/// do not decode. Connection losses, timeouts and our own refusals are not.
pub(crate) fn peer_fault(error: &io::Error) -> Option<&WireError> {
    let wire = error.get_ref()?.downcast_ref::<WireError>()?;
    match wire {
        WireError::TooLarge { .. } | WireError::Decode(_) => Some(wire),
        WireError::OutgoingTooLarge { .. } => None,
    }
}

/// Reads one frame of at most `limit_bytes`: `Ok(Err(_))` if the peer's length is refused, `Err`
/// if the stream fails.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    limit_bytes: usize,
) -> io::Result<Result<Vec<u8>, WireError>> {
    let mut prefix = [0u8; PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = u64::from(u32::from_le_bytes(prefix));
    let len_usize = usize::try_from(len).ok().filter(|&len| len <= limit_bytes);
    let Some(len_usize) = len_usize else {
        return Ok(Err(WireError::TooLarge { len, max: limit_bytes }));
    };
    let mut payload = Vec::with_capacity(len_usize.min(READ_RESERVE_BYTES_MAX));
    io.take(len).read_to_end(&mut payload).await?;
    if payload.len() != len_usize {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a frame"));
    }
    Ok(Ok(payload))
}

/// Writes one frame, refusing payloads over `limit_bytes` (the peer would refuse them).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    io: &mut W,
    payload: &[u8],
    limit_bytes: usize,
) -> io::Result<()> {
    let len = u32::try_from(payload.len()).ok().filter(|_| payload.len() <= limit_bytes);
    let Some(len) = len else {
        let error = WireError::OutgoingTooLarge { len: payload.len(), max: limit_bytes };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, error));
    };
    io.write_all(&len.to_le_bytes()).await?;
    io.write_all(payload).await?;
    io.flush().await
}

async fn read_value<T: Decode<()>, R: AsyncRead + Unpin>(
    io: &mut R,
    limit_bytes: usize,
) -> io::Result<Result<T, WireError>> {
    Ok(read_frame(io, limit_bytes)
        .await?
        .and_then(|payload| codec::decode(&payload, limit_bytes).map_err(WireError::Decode)))
}

async fn read_request<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<RequestFrame> {
    Ok(match read_value(io, SYNC_REQUEST_BYTES_MAX).await? {
        Ok(request) => RequestFrame::Valid(request),
        Err(wire) => RequestFrame::Invalid(wire),
    })
}

async fn read_response<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<Response> {
    read_value(io, SYNC_RESPONSE_BYTES_MAX).await?.map_err(|wire| io::Error::new(io::ErrorKind::InvalidData, wire))
}

async fn write_request<W: AsyncWrite + Unpin>(io: &mut W, frame: RequestFrame) -> io::Result<()> {
    match frame {
        RequestFrame::Valid(request) => write_frame(io, &codec::encode(&request), SYNC_REQUEST_BYTES_MAX).await,
        RequestFrame::Invalid(_) => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "an invalid request is never sent"))
        }
    }
}

/// The request-response codec of the sync protocol.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SyncCodec;

#[async_trait::async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = RequestFrame;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RequestFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_request(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_response(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, request: RequestFrame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_request(io, request).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, response: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &codec::encode(&response), SYNC_RESPONSE_BYTES_MAX).await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use libp2p::futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;

    /// An endless stream of zeros after a given prefix, counting what is read from it.
    struct Endless {
        prefix: Vec<u8>,
        read_bytes: usize,
    }

    impl AsyncRead for Endless {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let offset = self.read_bytes;
            for (i, b) in buf.iter_mut().enumerate() {
                *b = self.prefix.get(offset + i).copied().unwrap_or(0);
            }
            self.read_bytes += buf.len();
            Poll::Ready(Ok(buf.len()))
        }
    }

    fn protocol() -> StreamProtocol {
        StreamProtocol::new("/taksa/test/00000000/sync/1")
    }

    #[tokio::test]
    async fn request_and_response_round_trip() {
        let mut wire = Cursor::new(Vec::new());
        let request = Request::Blocks { from_height: 7, count: 3 };
        let frame = RequestFrame::Valid(request.clone());
        SyncCodec.write_request(&protocol(), &mut wire, frame).await.expect("in-memory IO succeeds");
        let response = Response::Blocks(Vec::new());
        SyncCodec.write_response(&protocol(), &mut wire, response.clone()).await.expect("in-memory IO succeeds");
        wire.set_position(0);
        let read = SyncCodec.read_request(&protocol(), &mut wire).await.expect("in-memory IO succeeds");
        assert!(matches!(read, RequestFrame::Valid(r) if r == request));
        let read = SyncCodec.read_response(&protocol(), &mut wire).await.expect("in-memory IO succeeds");
        assert_eq!(read, response);
    }

    #[tokio::test]
    async fn a_length_prefix_over_the_limit_is_refused_without_reading_or_allocating() {
        let claimed = u32::try_from(SYNC_RESPONSE_BYTES_MAX + 1).expect("fits u32");
        let mut endless = Endless { prefix: claimed.to_le_bytes().to_vec(), read_bytes: 0 };
        let error = SyncCodec.read_response(&protocol(), &mut endless).await.expect_err("must be refused");
        assert!(matches!(peer_fault(&error), Some(WireError::TooLarge { .. })), "{error}");
        // Only the prefix was consumed: nothing of the claimed payload was read or reserved.
        assert_eq!(endless.read_bytes, PREFIX_BYTES);

        let mut endless = Endless { prefix: u32::MAX.to_le_bytes().to_vec(), read_bytes: 0 };
        let read = SyncCodec.read_request(&protocol(), &mut endless).await.expect("a refusal, not an IO error");
        let refused =
            RequestFrame::Invalid(WireError::TooLarge { len: u64::from(u32::MAX), max: SYNC_REQUEST_BYTES_MAX });
        assert_eq!(format!("{read:?}"), format!("{refused:?}"));
        assert_eq!(endless.read_bytes, PREFIX_BYTES);
    }

    #[tokio::test]
    async fn a_frame_within_the_limit_reads_exactly_its_length() {
        // A valid Status request followed by noise the codec must not consume.
        let payload = codec::encode(&Request::Status);
        let mut bytes = u32::try_from(payload.len()).expect("fits u32").to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let mut endless = Endless { prefix: bytes.clone(), read_bytes: 0 };
        let frame = read_frame(&mut endless, SYNC_REQUEST_BYTES_MAX).await.expect("in-memory IO succeeds");
        assert_eq!(frame.expect("within the limit"), payload);
    }

    #[tokio::test]
    async fn garbage_and_truncated_frames_are_errors() {
        let mut garbage = vec![3, 0, 0, 0];
        garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
        let read = SyncCodec.read_request(&protocol(), &mut Cursor::new(garbage.clone())).await;
        assert!(matches!(read, Ok(RequestFrame::Invalid(WireError::Decode(_)))), "{read:?}");
        let error = SyncCodec.read_response(&protocol(), &mut Cursor::new(garbage)).await.expect_err("garbage");
        assert!(matches!(peer_fault(&error), Some(WireError::Decode(_))), "{error}");

        let truncated = vec![100, 0, 0, 0, 1, 2];
        let error = SyncCodec.read_response(&protocol(), &mut Cursor::new(truncated)).await.expect_err("truncated");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        // A connection that ends early is not proof of malice.
        assert!(peer_fault(&error).is_none());
    }

    #[tokio::test]
    async fn an_oversized_response_is_not_sent() {
        let mut wire = Cursor::new(Vec::new());
        let payload = vec![0u8; SYNC_RESPONSE_BYTES_MAX + 1];
        let error = write_frame(&mut wire, &payload, SYNC_RESPONSE_BYTES_MAX).await.expect_err("over the limit");
        assert!(peer_fault(&error).is_none(), "our own refusal is not the peer's fault");
        assert!(wire.get_ref().is_empty());
    }
}
