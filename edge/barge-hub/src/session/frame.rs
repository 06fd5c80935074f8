//! Reading and writing frames (u32 BE length + JSON) on the TLS stream.

use barge_edge_proto::wire::{decode, encode, frame_len};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The next frame, or None at a clean end of stream.
pub async fn read<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
) -> anyhow::Result<Option<T>> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = frame_len(header)?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await?;
    Ok(Some(decode(&body)?))
}

/// Write one frame and flush.
pub async fn write<T: Serialize, W: AsyncWrite + Unpin>(w: &mut W, msg: &T) -> anyhow::Result<()> {
    let bytes = encode(msg)?;
    w.write_all(&bytes).await?;
    w.flush().await?;
    Ok(())
}
