//! Which relay URL a `serverHost` names (transport.md §2.3).
//!
//! Upstream takes `host:port` and always dials `wss://`. We accept that form too, plus an
//! explicit `wss://`/`https://` prefix, and allow plain `ws://` (or `http://`) only for a
//! relay on this machine (`localhost`, `127.0.0.0/8`, `[::1]`): a development relay
//! without TLS. Anything else would put the session's traffic metadata (stream IDs, the
//! Noise handshake) on the network unencrypted.

use lnc_hashmail::paths::{WS_RECEIVE, WS_SEND};

/// Why a `serverHost` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Nothing was given.
    #[error(
        "mailbox address: empty serverHost; pass host:port, e.g. mailbox.terminal.lightning.today:443"
    )]
    Empty,
    /// The host part has characters a host:port cannot have.
    #[error("mailbox address: {0:?} is not host:port (no path, spaces or user info)")]
    Invalid(String),
    /// `ws://` towards a host that is not this machine.
    #[error(
        "mailbox address: plain ws:// is only allowed for localhost; use wss:// (or just host:port) for {0}"
    )]
    Insecure(String),
}

/// The relay's WebSocket base (`wss://host:port`), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxUrl {
    base: String,
}

fn is_local(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<core::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl MailboxUrl {
    /// Parses a `serverHost` as lnc-web users pass it.
    pub fn parse(server_host: &str) -> Result<Self, UrlError> {
        let s = server_host.trim();
        if s.is_empty() {
            return Err(UrlError::Empty);
        }
        let (secure, rest) = if let Some(r) = s.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("ws://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            (true, s)
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#'))
        {
            return Err(UrlError::Invalid(s.to_owned()));
        }
        if !secure && !is_local(host) {
            return Err(UrlError::Insecure(host.to_owned()));
        }
        let scheme = if secure { "wss" } else { "ws" };
        Ok(MailboxUrl {
            base: format!("{scheme}://{host}"),
        })
    }

    /// The receive socket's URL (`…/hashmail/receive?method=POST`).
    pub fn receive(&self) -> String {
        format!("{}{WS_RECEIVE}?method=POST", self.base)
    }

    /// The send socket's URL (`…/hashmail/send?method=POST`).
    pub fn send(&self) -> String {
        format!("{}{WS_SEND}?method=POST", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_form_is_wss() {
        let u = MailboxUrl::parse("mailbox.terminal.lightning.today:443").unwrap();
        assert_eq!(
            u.receive(),
            "wss://mailbox.terminal.lightning.today:443/v1/lightning-node-connect/hashmail/receive?method=POST"
        );
        assert_eq!(
            u.send(),
            "wss://mailbox.terminal.lightning.today:443/v1/lightning-node-connect/hashmail/send?method=POST"
        );
        assert_eq!(
            MailboxUrl::parse("https://relay.example:8443/").unwrap(),
            MailboxUrl::parse("wss://relay.example:8443").unwrap()
        );
    }

    #[test]
    fn plain_ws_only_for_this_machine() {
        for ok in [
            "ws://127.0.0.1:1234",
            "ws://localhost:80",
            "http://127.0.0.2:9",
            "ws://[::1]:443",
            "ws://LOCALHOST",
        ] {
            assert!(MailboxUrl::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            MailboxUrl::parse("ws://127.0.0.1:1234").unwrap().send(),
            "ws://127.0.0.1:1234/v1/lightning-node-connect/hashmail/send?method=POST"
        );
        for bad in [
            "ws://relay.example:80",
            "ws://10.0.0.1:1",
            "http://localhost.evil.com",
        ] {
            assert!(
                matches!(MailboxUrl::parse(bad), Err(UrlError::Insecure(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn garbage_refused() {
        assert_eq!(MailboxUrl::parse("  "), Err(UrlError::Empty));
        for bad in ["wss://", "a b:1", "host/path", "user@host:1", "h:1?x"] {
            assert!(
                matches!(MailboxUrl::parse(bad), Err(UrlError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
