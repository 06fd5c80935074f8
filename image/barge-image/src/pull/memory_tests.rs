//! What a layer download keeps in memory.

use super::*;

/// A network chunk is queued as copies: while the pieces wait for the unpacking thread, the
/// chunk's buffer (hyper's read buffer, in a pull) is no longer referenced and can be reused.
#[tokio::test(flavor = "current_thread")]
async fn queued_pieces_do_not_pin_the_network_buffer() {
    let data: Vec<u8> = (0..PIECE * 3 + 5).map(|i| i as u8).collect();
    let chunk = bytes::Bytes::from(data.clone());
    let (tx, mut rx) = mpsc::channel(8);
    assert!(send_copied(&tx, chunk.clone()).await);
    drop(tx);
    // All four pieces wait in the queue, and the chunk's buffer is referenced by no one else.
    assert!(
        chunk.is_unique(),
        "a queued piece shares the chunk's buffer"
    );
    let mut got = Vec::new();
    while let Some(piece) = rx.recv().await {
        let piece = piece.unwrap();
        assert!(!piece.is_empty() && piece.len() <= PIECE, "{}", piece.len());
        got.extend_from_slice(&piece);
    }
    assert_eq!(got, data);
}

#[tokio::test(flavor = "current_thread")]
async fn a_gone_worker_stops_the_sender() {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    drop(rx);
    assert!(!send_copied(&tx, bytes::Bytes::from_static(b"abc")).await);
}
