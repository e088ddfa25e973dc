//! The node's side of the network: [`start`] and the cloneable [`Handle`] that sends commands to
//! the swarm task.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{self, Behaviour};
use crate::config::{self, Names, PeerAddr};
use crate::service::{Command, Service};
use crate::{
    events, limits, Config, Error, Events, MessageId, PeerId, PeerInfo, Request, Response, Topic, Verdict,
    BLOCKS_PER_REQUEST_MAX, COMMANDS_QUEUE_MAX, REQUEST_TIMEOUT_MS,
};

/// Connections nobody uses (no mesh, no request) close after this long.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `start` waits for the listener to report its address.
const BIND_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond the swarm's own request timeout, in case its answer is lost.
const REQUEST_TIMEOUT_SLACK_MS: u64 = 2_000;

/// Commands to the network. Cheap to clone; the network stops when [`Handle::shutdown`] is called
/// or every handle is dropped.
#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    local: PeerId,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("local", &self.local).finish_non_exhaustive()
    }
}

impl Handle {
    /// Our own peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// Queues `data` for gossip on `topic` without waiting. Having no peers yet, or having sent
    /// the same bytes before, is not an error (the message simply goes nowhere).
    ///
    /// Data over the topic's limit is refused with [`Error::TooLarge`]: peers would reject it
    /// and penalise us.
    pub fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), Error> {
        if data.len() > topic.bytes_max() {
            return Err(Error::TooLarge { len: data.len(), max: topic.bytes_max() });
        }
        self.try_command(Command::Publish { topic, data })
    }

    /// The node's verdict on an [`Event::Gossip`], without waiting. If the queue is full the
    /// verdict is lost and the message expires unforwarded.
    pub fn report(&self, id: MessageId, from: PeerId, verdict: Verdict) {
        if self.try_command(Command::Report { id, from, verdict }).is_err() {
            tracing::warn!(target: "p2p", %from, ?verdict, "verdict dropped: command queue full");
        }
    }

    /// Lowers `peer`'s score for misbehaviour the node found (a lying sync response).
    pub fn penalize(&self, peer: &PeerId, reason: &'static str) {
        if self.try_command(Command::Penalize { peer: *peer, reason }).is_err() {
            tracing::warn!(target: "p2p", %peer, reason, "penalty dropped: command queue full");
        }
    }

    /// Restricts the network to `peers`, without waiting. With `Some(list)`, every connection
    /// to or from a peer outside the list is closed at once and new ones are refused, inbound
    /// and outbound (an empty list isolates the node); listed peers we know an address of are
    /// dialed. `None` lifts the restriction and dials the peers we know again (Kademlia's
    /// table and the bootnodes), so the node reconnects by itself within seconds. Bans of the
    /// scoring apply either way: a reserved peer that is banned stays out until its ban ends.
    /// Reserved peers are priority peers: they never wait for a free slot.
    ///
    /// Fails with [`Error::Busy`] if the command queue is full (try again) or [`Error::Closed`]
    /// once the network has stopped.
    pub fn set_reserved(&self, peers: Option<Vec<PeerId>>) -> Result<(), Error> {
        self.try_command(Command::SetReserved { peers })
    }

    /// Asks `peer` (dialing it if needed) and waits for its answer, at most
    /// [`REQUEST_TIMEOUT_MS`] plus a little. A [`Request::Blocks`] over
    /// [`BLOCKS_PER_REQUEST_MAX`] is refused with [`Error::TooLarge`] before it is sent.
    pub async fn request(&self, peer: &PeerId, request: Request) -> Result<Response, Error> {
        if let Request::Blocks { count, .. } = request {
            if count > BLOCKS_PER_REQUEST_MAX {
                let max = BLOCKS_PER_REQUEST_MAX as usize;
                return Err(Error::TooLarge { len: usize::try_from(count).unwrap_or(usize::MAX), max });
            }
        }
        let (reply, answer) = oneshot::channel();
        self.command(Command::Request { peer: *peer, request, reply }).await?;
        let deadline = Duration::from_millis(REQUEST_TIMEOUT_MS + REQUEST_TIMEOUT_SLACK_MS);
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// The connected peers; empty once the network has stopped.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        let (reply, answer) = oneshot::channel();
        if self.command(Command::Peers { reply }).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// The addresses we listen on, each ending in `/p2p/<our id>`; empty once stopped.
    pub async fn listen_addrs(&self) -> Vec<String> {
        let (reply, answer) = oneshot::channel();
        if self.command(Command::ListenAddrs { reply }).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Stops the network: closes every connection and the listener, then returns. Further
    /// commands fail with [`Error::Closed`].
    pub async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.command(Command::Shutdown { done }).await.is_ok() {
            // An error means the task is already gone, which is what was asked.
            let _ = stopped.await;
        }
    }

    fn try_command(&self, command: Command) -> Result<(), Error> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Busy,
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).await.map_err(|_| Error::Closed)
    }
}

/// Starts the network: builds the swarm, binds the listen address (returning once it is bound),
/// dials the bootnodes and spawns the swarm task. Must be called inside a tokio runtime.
pub async fn start(config: Config) -> Result<(Handle, Events), Error> {
    let listen = config::parse_addr(&config.listen_addr).await?;
    let mut bootnodes = Vec::with_capacity(config.bootnodes.len());
    for bootnode in &config.bootnodes {
        bootnodes.push(config::parse_addr(bootnode).await?);
    }
    let names = Names::new(&config.chain_id, &config.genesis_hash);
    let mut swarm = build_swarm(&config, &names, &bootnodes)?;
    for topic in Topic::ALL {
        let topic = libp2p::gossipsub::IdentTopic::new(names.topic(topic));
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| Error::Setup { what: "gossipsub subscription", reason: e.to_string() })?;
    }
    let listen_addrs = bind(&mut swarm, listen.addr).await?;
    let local = PeerId(*swarm.local_peer_id());
    tracing::info!(target: "p2p", peer = %local, addrs = ?listen_addrs, "network listening");

    let (queues, events) = events::channel();
    let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_QUEUE_MAX);
    let service = Service::new(swarm, &names, queues, bootnodes, listen_addrs)?;
    tokio::spawn(service.run(commands_rx));
    Ok((Handle { commands: commands_tx, local }, events))
}

fn build_swarm(config: &Config, names: &Names, bootnodes: &[PeerAddr]) -> Result<Swarm<Behaviour>, Error> {
    let mut seed = config.identity_seed;
    let key = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .map_err(|e| Error::Setup { what: "identity", reason: e.to_string() })?;
    let reserved: Option<HashSet<libp2p::PeerId>> =
        config.reserved.as_ref().map(|peers| peers.iter().map(|p| p.0).collect());
    let behaviour = behaviour::build(&key, names, build_limits(config, bootnodes, reserved.as_ref()), reserved)?;
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| Error::Setup { what: "transport", reason: e.to_string() })?
        .with_behaviour(|_| behaviour)
        .unwrap_or_else(|never| match never {})
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

/// The limits of `config`; the bootnodes and the listed priority peers have slots of their own.
fn build_limits(
    config: &Config,
    bootnodes: &[PeerAddr],
    reserved: Option<&HashSet<libp2p::PeerId>>,
) -> limits::Behaviour {
    let settings = limits::Settings {
        inbound_max: config.inbound_connections_max,
        outbound_max: config.outbound_connections_max,
        per_ip_max: config.inbound_peers_per_ip_max,
        limit_loopback: config.limit_loopback,
    };
    let named = bootnodes.iter().filter_map(|b| b.peer);
    let fixed = named.chain(config.priority_peers.iter().map(|p| p.0)).collect();
    let unnamed = bootnodes.iter().filter(|b| b.peer.is_none()).map(|b| b.addr.clone()).collect();
    limits::Behaviour::new(settings, fixed, unnamed, reserved)
}

/// Binds `addr` and waits until the listener reports its actual address (the port, when 0 was
/// asked). Nothing else can happen yet: nothing has been dialed.
async fn bind(swarm: &mut Swarm<Behaviour>, addr: Multiaddr) -> Result<Vec<Multiaddr>, Error> {
    let listen_error = |reason: String| Error::Listen { addr: addr.to_string(), reason };
    // libp2p binds with SO_REUSEPORT, so a second node on a taken port would start and share
    // the port's connections with the first; a plain bind finds the conflict first.
    if let Some(socket) = config::socket_addr(&addr).filter(|s| s.port() != 0) {
        drop(std::net::TcpListener::bind(socket).map_err(|e| listen_error(e.to_string()))?);
    }
    swarm.listen_on(addr.clone()).map_err(|e| listen_error(e.to_string()))?;
    let first = tokio::time::timeout(BIND_TIMEOUT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(reason.err().map_or("listener closed".into(), |e| e.to_string()))
                }
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| listen_error("no address reported".into()))?
    .map_err(listen_error)?;
    Ok(vec![first])
}
