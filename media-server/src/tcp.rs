//! ICE-TCP for networks that block UDP (RFC 6544, passive candidates only): a TCP
//! listener whose connections carry STUN/DTLS/RTP in RFC 4571 frames (a 16-bit length,
//! then the packet). Each connection gets a reader and a writer task; the driver sees
//! [`TcpEvent`]s and sends through the writer of the connection a transmit names.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tracing::debug;

/// Open connections at most; more are refused (each costs two tasks and buffers).
const MAX_CONNECTIONS: usize = 512;
/// Frames queued towards one connection before further ones are dropped.
const WRITE_QUEUE: usize = 256;
/// Largest frame we accept from a peer; WebRTC packets stay well under it.
const MAX_FRAME: usize = 4096;

/// What the TCP side tells the driver.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    Opened {
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Frame {
        peer: SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        peer: SocketAddr,
    },
}

/// Accepts connections until the driver goes away.
pub(crate) async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue; // e.g. out of file descriptors for a moment
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!("ICE-TCP connection refused: {MAX_CONNECTIONS} open");
            continue; // dropping the stream closes it
        };
        if events.is_closed() {
            return;
        }
        let events = events.clone();
        tokio::spawn(async move {
            serve(stream, peer, events).await;
            drop(slot);
        });
    }
}

async fn serve(stream: TcpStream, peer: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    if events
        .send(TcpEvent::Opened { peer, writer: tx })
        .await
        .is_err()
    {
        return;
    }
    let write = tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            // Invariant: the driver only queues str0m transmits, which are < 64 KiB.
            let Ok(len) = u16::try_from(data.len()) else {
                continue;
            };
            if writer.write_all(&len.to_be_bytes()).await.is_err()
                || writer.write_all(&data).await.is_err()
            {
                return;
            }
        }
    });
    let mut buf = vec![0u8; MAX_FRAME];
    while let Ok(len) = reader.read_u16().await {
        let len = usize::from(len);
        if len == 0 || len > MAX_FRAME {
            debug!("ICE-TCP frame of {len} bytes; closing the connection");
            break;
        }
        if reader.read_exact(&mut buf[..len]).await.is_err() {
            break;
        }
        let frame = TcpEvent::Frame {
            peer,
            data: buf[..len].to_vec(),
        };
        if events.send(frame).await.is_err() {
            break;
        }
    }
    write.abort();
    let _ = events.send(TcpEvent::Closed { peer }).await;
}
