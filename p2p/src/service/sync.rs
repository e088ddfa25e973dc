//! The sync protocol inside the swarm task: inbound requests go to the node with a [`Reply`],
//! outbound ones are matched to their waiting caller; bad bytes cost the peer score.

use std::time::Duration;

use libp2p::request_response::{self, InboundFailure, Message, OutboundFailure, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use super::Service;
use crate::codec::{self, RequestFrame};
use crate::score::BAD_BYTES;
use crate::{Error, Event, PeerId, Reply, Request, Response, BLOCKS_PER_REQUEST_MAX, REQUEST_TIMEOUT_MS};

/// Our own requests in flight at once; beyond it `Handle::request` fails with `Error::Busy`.
const OUTBOUND_REQUESTS_MAX: usize = 1024;

impl Service {
    pub(super) fn on_sync_event(&mut self, event: request_response::Event<RequestFrame, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request { request: RequestFrame::Valid(request), channel, .. } => {
                    self.on_inbound_request(peer, request, channel)
                }
                Message::Request { request: RequestFrame::Invalid(wire), .. } => {
                    // Dropping the channel answers the peer with an error.
                    tracing::debug!(target: "p2p", %peer, reason = %wire, "invalid sync request");
                    self.penalize(peer, BAD_BYTES, "invalid sync request");
                }
                Message::Response { request_id, response } => {
                    if let Some(reply) = self.outbound.remove(&request_id) {
                        // The caller may have timed out already.
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.on_outbound_failure(peer, request_id, error)
            }
            request_response::Event::InboundFailure { peer, error, .. } => self.on_inbound_failure(peer, error),
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_inbound_request(&mut self, peer: libp2p::PeerId, request: Request, channel: ResponseChannel<Response>) {
        if let Request::Blocks { count, .. } = request {
            if count > BLOCKS_PER_REQUEST_MAX {
                // Dropping the channel answers the peer with an error.
                self.penalize(peer, BAD_BYTES, "sync request for too many blocks");
                return;
            }
        }
        let (reply, answer) = oneshot::channel();
        let event = Event::Request { from: PeerId(peer), request, reply: Reply(reply) };
        if self.queues.try_send(event).is_err() {
            tracing::warn!(target: "p2p", %peer, "sync request dropped: node's queue full");
            return;
        }
        self.replies.push(Box::pin(async move {
            let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
            let response = tokio::time::timeout(timeout, answer).await.ok().and_then(Result::ok);
            (channel, response)
        }));
    }

    /// Sends the node's answer, or drops the channel (the peer sees an error) if there is none.
    pub(super) fn send_reply(&mut self, channel: ResponseChannel<Response>, response: Option<Response>) {
        let Some(response) = response else {
            tracing::debug!(target: "p2p", "sync request left unanswered by the node");
            return;
        };
        if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
            tracing::debug!(target: "p2p", "sync response not sent: the requester is gone");
        }
    }

    pub(super) fn start_request(
        &mut self,
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, Error>>,
    ) {
        if self.outbound.len() >= OUTBOUND_REQUESTS_MAX {
            let _ = reply.send(Err(Error::Busy));
            return;
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&peer.0, RequestFrame::Valid(request));
        self.outbound.insert(id, reply);
    }

    fn on_outbound_failure(&mut self, peer: libp2p::PeerId, id: OutboundRequestId, failure: OutboundFailure) {
        let error = match failure {
            OutboundFailure::Timeout => Error::Timeout,
            OutboundFailure::Io(io) => match codec::peer_fault(&io) {
                Some(fault) => {
                    let reason = fault.to_string();
                    tracing::debug!(target: "p2p", %peer, %reason, "invalid sync response");
                    self.penalize(peer, BAD_BYTES, "invalid sync response");
                    Error::Decode { peer: PeerId(peer), reason }
                }
                None => Error::Remote { peer: PeerId(peer), reason: io.to_string() },
            },
            other => Error::Remote { peer: PeerId(peer), reason: other.to_string() },
        };
        if let Some(reply) = self.outbound.remove(&id) {
            let _ = reply.send(Err(error));
        }
    }

    fn on_inbound_failure(&mut self, peer: libp2p::PeerId, failure: InboundFailure) {
        tracing::debug!(target: "p2p", %peer, %failure, "inbound sync request failed");
    }
}
