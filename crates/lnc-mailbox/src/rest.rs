//! The REST front end: grpc-gateway's create (`POST`) and delete (`DELETE`) of a mailbox,
//! which browsers use before opening the WebSocket streams.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lnc_hashmail::{json, pb};

use crate::client::ClientInfo;
use crate::error::RelayError;
use crate::web::{App, error_response};

fn header_auth(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("grpc-metadata-authorization"))
        .map(HeaderValue::as_bytes)
}

/// `POST /v1/lightning-node-connect/hashmail` with a `CipherBoxAuth` body.
pub async fn create(
    State(app): State<App>,
    Extension(client): Extension<ClientInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: pb::CipherBoxAuth = match json::parse_create_body(&body) {
        Ok(r) => pb::CipherBoxAuth {
            desc: r.desc.map(Into::into),
            auth: r
                .lnd_auth
                .map(|_| pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
        },
        Err(e) => return error_response(&app, RelayError::Malformed(e.to_string())),
    };
    let res = match app.service.check_box_auth(&req, header_auth(&headers)) {
        Ok((id, token)) => app.store.create(id, client.ip, token).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"success":{"desc":null}}"#,
        )
            .into_response(),
        Err(e) => error_response(&app, e),
    }
}

/// `DELETE /v1/lightning-node-connect/hashmail?desc.stream_id=<b64>` (fields
/// as query parameters, grpc-gateway style).
pub async fn delete(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let sid = match json::parse_delete_query(query.as_deref().unwrap_or("")) {
        Ok(sid) => sid,
        Err(e) => return error_response(&app, RelayError::Malformed(e.to_string())),
    };
    let req = pb::CipherBoxAuth {
        desc: sid.map(|s| pb::CipherBoxDesc {
            stream_id: s.into(),
        }),
        // REST DELETE cannot carry an empty message in a query: accept its
        // absence (auth, if enabled, comes from the header).
        auth: Some(pb::cipher_box_auth::Auth::LndAuth(pb::LndAuth {})),
    };
    let res = match app.service.check_box_auth(&req, header_auth(&headers)) {
        Ok((id, token)) => app.store.delete(&id, token).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Err(e) => error_response(&app, e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_query_parameter() {
        // Escaped and unescaped '+', '=' padding, other parameters ignored.
        assert_eq!(
            json::parse_delete_query("x=1&desc.stream_id=AQ%2BB%2Fw%3D%3D").unwrap(),
            json::b64_decode("AQ+B/w==").ok()
        );
        assert_eq!(
            json::parse_delete_query("desc.stream_id=AQ+B/w==").unwrap(),
            json::b64_decode("AQ+B/w==").ok()
        );
        assert_eq!(json::parse_delete_query("").unwrap(), None);
        assert!(matches!(
            json::parse_delete_query("desc.stream_id=%%%"),
            Err(json::FrameError::Base64(_))
        ));
    }
}
