//! The native gRPC front end: `hashmailrpc.HashMail` over HTTP/2.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_server::HashMail;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Auth;
use crate::client::ClientInfo;
use crate::error::RelayError;
use crate::metrics::Metrics;
use crate::store::{ReadHalf, Store, Transport, stream_id};

/// Implements the four RPCs on the shared [`Store`].
#[derive(Clone)]
pub struct HashMailService {
    pub(crate) store: Arc<Store>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) metrics: Arc<Metrics>,
}

impl HashMailService {
    fn reject(&self, e: RelayError) -> Status {
        self.metrics.reject(e.reason());
        tracing::debug!(error = %e, "grpc request refused");
        e.into()
    }

    /// An error reading the writer's next message. tonic reports a message above the
    /// decoding limit (set just above `max_message_bytes`) as `OutOfRange`; gRPC's status
    /// for it, and what grpc-go (aperture) answers, is `ResourceExhausted`, so it is
    /// counted and answered as our own [`RelayError::MessageTooLarge`] class.
    fn inbound(&self, status: Status) -> Status {
        if status.code() != tonic::Code::OutOfRange {
            return status;
        }
        self.metrics.reject("message_too_large");
        tracing::debug!(error = %status.message(), "grpc message refused");
        Status::resource_exhausted(format!("message too large: {}", status.message()))
    }

    /// Validates a create/delete request; returns the stream id and the
    /// token index.
    pub(crate) fn check_box_auth(
        &self,
        req: &pb::CipherBoxAuth,
        authorization: Option<&[u8]>,
    ) -> Result<(crate::store::StreamId, Option<u32>), RelayError> {
        let desc = req.desc.as_ref().ok_or(RelayError::MissingDesc)?;
        let id = stream_id(&desc.stream_id)?;
        if req.auth.is_none() {
            return Err(RelayError::MissingAuth);
        }
        let token = self.auth.check(authorization)?;
        Ok((id, token))
    }
}

fn authorization<T>(req: &Request<T>) -> Option<&[u8]> {
    req.metadata().get("authorization").map(|v| v.as_bytes())
}

fn client_ip<T>(req: &Request<T>) -> std::net::IpAddr {
    req.extensions()
        .get::<ClientInfo>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.ip)
}

#[tonic::async_trait]
impl HashMail for HashMailService {
    async fn new_cipher_box(
        &self,
        request: Request<pb::CipherBoxAuth>,
    ) -> Result<Response<pb::CipherInitResp>, Status> {
        let ip = client_ip(&request);
        let (id, token) = self
            .check_box_auth(request.get_ref(), authorization(&request))
            .map_err(|e| self.reject(e))?;
        self.store
            .create(id, ip, token)
            .await
            .map_err(|e| self.reject(e))?;
        tracing::debug!(%ip, "mailbox created (grpc)");
        Ok(Response::new(pb::CipherInitResp {
            resp: Some(pb::cipher_init_resp::Resp::Success(pb::CipherSuccess {
                desc: None,
            })),
        }))
    }

    async fn del_cipher_box(
        &self,
        request: Request<pb::CipherBoxAuth>,
    ) -> Result<Response<pb::DelCipherBoxResp>, Status> {
        let (id, token) = self
            .check_box_auth(request.get_ref(), authorization(&request))
            .map_err(|e| self.reject(e))?;
        self.store
            .delete(&id, token)
            .await
            .map_err(|e| self.reject(e))?;
        Ok(Response::new(pb::DelCipherBoxResp {}))
    }

    async fn send_stream(
        &self,
        request: Request<Streaming<pb::CipherBox>>,
    ) -> Result<Response<pb::CipherBoxDesc>, Status> {
        let writer = client_ip(&request);
        let mut stream = request.into_inner();
        // Validate the first message before touching anything (the Go relay
        // dereferences a missing desc and crashes).
        let Some(first) = stream.message().await.map_err(|s| self.inbound(s))? else {
            return Ok(Response::new(pb::CipherBoxDesc::default()));
        };
        let desc = first
            .desc
            .ok_or(RelayError::MissingDesc)
            .map_err(|e| self.reject(e))?;
        let id = stream_id(&desc.stream_id).map_err(|e| self.reject(e))?;
        let half = self
            .store
            .open_writer(&id, Transport::Grpc, writer)
            .await
            .map_err(|e| self.reject(e))?;
        half.send(first.msg).await.map_err(|e| self.reject(e))?;
        loop {
            tokio::select! {
                next = stream.message() => match next {
                    Ok(Some(b)) => half.send(b.msg).await.map_err(|e| self.reject(e))?,
                    Ok(None) => return Ok(Response::new(desc)),
                    Err(status) => return Err(self.inbound(status)),
                },
                e = half.closed() => return Err(e.into()),
            }
        }
    }

    type RecvStreamStream = RecvStream;

    async fn recv_stream(
        &self,
        request: Request<pb::CipherBoxDesc>,
    ) -> Result<Response<Self::RecvStreamStream>, Status> {
        let desc = request.into_inner();
        let id = stream_id(&desc.stream_id).map_err(|e| self.reject(e))?;
        let half = self
            .store
            .open_reader(&id, Transport::Grpc)
            .await
            .map_err(|e| self.reject(e))?;
        Ok(Response::new(RecvStream {
            half,
            desc,
            done: false,
        }))
    }
}

/// The response stream of one RecvStream: polls the mailbox directly (no task,
/// no channel); dropping it (client gone) frees the read side.
pub struct RecvStream {
    half: ReadHalf,
    desc: pb::CipherBoxDesc,
    done: bool,
}

impl futures_util::Stream for RecvStream {
    type Item = Result<pb::CipherBox, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.half.poll_recv(cx) {
            Poll::Ready(Ok(msg)) => Poll::Ready(Some(Ok(pb::CipherBox {
                desc: Some(self.desc.clone()),
                msg,
            }))),
            Poll::Ready(Err(e)) => {
                self.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
