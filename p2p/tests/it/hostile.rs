//! A hostile peer built from raw libp2p: it speaks gossipsub and our sync protocol name but
//! sends whatever bytes a scenario gives it, which our own nodes never would.

use std::io;
use std::time::Duration;

use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, identity, noise, tcp, yamux, Multiaddr, StreamProtocol, SwarmBuilder};
use tokio::sync::mpsc;

use crate::common::name;

/// The most a hostile peer reads of anything, in bytes.
const READ_BYTES_MAX: u64 = 64 * 1024;
/// The most messages a hostile peer queues for sending.
pub(crate) const FLOOD_MESSAGES_MAX: usize = 20_000;

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<RawCodec>,
}

enum Command {
    Publish { topic: String, data: Vec<u8> },
    Request { peer: libp2p::PeerId, bytes: Vec<u8> },
}

pub(crate) struct Hostile {
    pub(crate) id: libp2p::PeerId,
    commands: mpsc::UnboundedSender<Command>,
}

impl Hostile {
    /// Connects to `target` (a multiaddr) and answers every sync request with `answer`, byte for
    /// byte.
    pub(crate) fn start(seed: u8, target: &str, answer: Vec<u8>) -> Hostile {
        let key = identity::Keypair::ed25519_from_bytes([seed; 32]).expect("a key from 32 bytes");
        // Room to queue a flood without dropping any of it.
        let config = gossipsub::ConfigBuilder::default()
            .max_transmit_size(256 * 1024)
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            // Unsigned messages have no author and sequence number to tell them apart by, so
            // their ids come from their bytes (as the node's do).
            .message_id_fn(|m: &gossipsub::Message| {
                use std::hash::{Hash as _, Hasher as _};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                m.data.hash(&mut h);
                gossipsub::MessageId::from(h.finish().to_le_bytes().to_vec())
            })
            .connection_handler_queue_len(FLOOD_MESSAGES_MAX)
            .build()
            .expect("config");
        let gossipsub =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).expect("gossipsub");
        let protocol = StreamProtocol::try_from_owned(name("sync")).expect("protocol name");
        let sync = request_response::Behaviour::with_codec(
            RawCodec,
            [(protocol, ProtocolSupport::Full)],
            request_response::Config::default(),
        );
        let mut swarm = SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .expect("transport")
            .with_behaviour(|_| Behaviour { gossipsub, sync })
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        swarm.dial(target.parse::<Multiaddr>().expect("a multiaddr")).expect("dial");
        let id = *swarm.local_peer_id();
        let (commands, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => {
                        if let SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                            message: request_response::Message::Request { channel, .. },
                            ..
                        })) = event
                        {
                            let _ = swarm.behaviour_mut().sync.send_response(channel, answer.clone());
                        }
                    }
                    command = rx.recv() => match command {
                        Some(Command::Publish { topic, data }) => {
                            let _ = swarm.behaviour_mut().gossipsub.publish(gossipsub::IdentTopic::new(topic), data);
                        }
                        Some(Command::Request { peer, bytes }) => {
                            swarm.behaviour_mut().sync.send_request(&peer, bytes);
                        }
                        None => break,
                    },
                }
            }
        });
        Hostile { id, commands }
    }

    /// Publishes `data` on the topic named `name(suffix)` in our wire format (payload, then an
    /// 8-byte send stamp), with no size check of ours.
    pub(crate) fn publish(&self, suffix: &str, data: Vec<u8>) {
        self.publish_stamped(suffix, data, 0);
    }

    /// Publishes `data` with the send stamp `stamp`: a new stamp makes the same payload a new
    /// message to gossipsub, which is how a replay looks.
    pub(crate) fn publish_stamped(&self, suffix: &str, mut data: Vec<u8>, stamp: u64) {
        data.extend_from_slice(&stamp.to_le_bytes());
        let _ = self.commands.send(Command::Publish { topic: name(suffix), data });
    }

    /// Sends `bytes` as a sync request, framing and all as given.
    pub(crate) fn request(&self, peer: &taksa_p2p::PeerId, bytes: Vec<u8>) {
        let peer = peer.to_string().parse().expect("a peer id displays in base58");
        let _ = self.commands.send(Command::Request { peer, bytes });
    }
}

/// Bytes in, bytes out: no framing, no limits but a read cap.
#[derive(Clone, Copy, Default)]
struct RawCodec;

async fn read_all<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io.take(READ_BYTES_MAX).read_to_end(&mut out).await?;
    Ok(out)
}

async fn write_all<T: AsyncWrite + Unpin>(io: &mut T, bytes: Vec<u8>) -> io::Result<()> {
    io.write_all(&bytes).await
}

#[async_trait::async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        // Our nodes close their side after the request, so reading to the end is reading it.
        read_all(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_all(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, request: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, request).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, response: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, response).await
    }
}
