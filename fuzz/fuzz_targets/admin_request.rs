#![no_main]
//! The admin API's request inputs (`POST /v1/sessions` JSON, the `{id}` of show/revoke,
//! show's `?phrase=` query). The CLI writes them, but anything on the host holding the
//! token can send any bytes, and a panic in a handler drops the operator's request with no
//! answer. The same bytes are read four ways:
//!
//! - as the JSON body: if it parses, the request the CLI would send for it parses back the
//!   same, and it goes through the conversion below;
//! - as a request built field by field (`arbitrary`), because raw bytes seldom get past
//!   serde, while the type names, permission strings and lifetimes near the largest
//!   representable instant are where conversion goes wrong;
//! - as a session ID: exactly the 8-hex-digit strings are accepted, and an ID printed by the
//!   node parses back to itself, so a pasted ID always names the session that was listed;
//! - as a `show` query: the phrase is requested exactly when a form-decoding model of the
//!   query holds one `phrase=true` pair, so a query never reveals a phrase nobody asked for.
//!
//! Conversion (`AddSessionRequest::to_new_session`, then `NewSession::check` at a fixed
//! instant, what happens before LND is called) must accept exactly the valid requests and
//! keep what they say: the type's name and permissions parse back to the same type, the
//! label is the request's (or `<type> session`), and the times are the request's
//! durations from the same whole second, with a caveat for that very second.
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use lnc_core::macaroon::UnixTime;
use lnc_node::SessionType;
use lnc_node::admin::{AddSessionRequest, parse_session_type, wants_phrase};
use lnc_node::session::{DEFAULT_EXPIRY, DEFAULT_FIRST_CONNECTION_TIMEOUT, SessionId};

/// The instant conversions are checked at (2023-11-14T22:13:20.5Z).
const NOW_SECS: u64 = 1_700_000_000;
/// 9999-12-31T23:59:59Z, the last second an RFC 3339 `time-before` caveat can name.
const LAST_CAVEAT_SECS: u64 = 253_402_300_799;
/// The last second a `SystemTime` holds on Linux (`time_t` is an i64).
const LAST_SYSTEM_TIME_SECS: u64 = i64::MAX as u64;

#[derive(Arbitrary, Debug)]
enum Kind {
    Name(u8),
    Other(String),
}

const NAMES: &[&str] = &[
    "readonly",
    "read-only",
    "admin",
    "invoice",
    "invoice-only",
    "invoices",
    "spend",
    "custom",
];

#[derive(Arbitrary, Debug)]
enum Permission {
    Pair(String, String),
    Uri(String),
    Raw(String),
}

/// Durations that reach the ends of the representable range often.
#[derive(Arbitrary, Debug)]
enum Secs {
    Small(u16),
    Any(u64),
    /// Around the last second a caveat can name, from [`NOW_SECS`].
    NearCaveatLimit(i16),
    /// Around the last second a `SystemTime` holds, from [`NOW_SECS`].
    NearTimeLimit(i16),
}

impl Secs {
    fn get(&self) -> u64 {
        let near = |limit: u64, d: i16| (limit - NOW_SECS).saturating_add_signed(i64::from(d));
        match *self {
            Secs::Small(s) => u64::from(s),
            Secs::Any(s) => s,
            Secs::NearCaveatLimit(d) => near(LAST_CAVEAT_SECS, d),
            Secs::NearTimeLimit(d) => near(LAST_SYSTEM_TIME_SECS, d),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Request {
    label: String,
    kind: Kind,
    permissions: Vec<Permission>,
    expiry: Option<Secs>,
    mailbox: Option<String>,
    first_connection_timeout: Option<Secs>,
}

impl Request {
    fn build(&self) -> AddSessionRequest {
        AddSessionRequest {
            label: self.label.clone(),
            session_type: match &self.kind {
                Kind::Name(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
                Kind::Other(s) => s.clone(),
            },
            permissions: self
                .permissions
                .iter()
                .map(|p| match p {
                    Permission::Pair(e, a) => format!("{e}:{a}"),
                    Permission::Uri(m) => format!("uri:{m}"),
                    Permission::Raw(s) => s.clone(),
                })
                .collect(),
            expiry_secs: self.expiry.as_ref().map(Secs::get),
            mailbox: self.mailbox.clone(),
            first_connection_timeout_secs: self.first_connection_timeout.as_ref().map(Secs::get),
            policy: Default::default(),
        }
    }
}

/// The canonical name of a session type name or alias.
fn canonical(kind: &str) -> Option<&'static str> {
    match kind {
        "readonly" | "read-only" => Some("readonly"),
        "admin" => Some("admin"),
        "invoice" | "invoice-only" | "invoices" => Some("invoice"),
        "spend" => Some("spend"),
        "custom" => Some("custom"),
        _ => None,
    }
}

fn check_request(req: &AddSessionRequest) {
    // The CLI sends `serde_json::to_value(req)`; the node must read that same request.
    let json = serde_json::to_vec(req).expect("a request serializes");
    let again: AddSessionRequest = serde_json::from_slice(&json).expect("own JSON parses");
    assert_eq!(
        serde_json::to_value(&again).expect("serializes"),
        serde_json::to_value(req).expect("serializes")
    );

    let name = canonical(&req.session_type);
    let good_permission = |p: &String| {
        p.split_once(':')
            .is_some_and(|(e, a)| !e.is_empty() && !a.is_empty())
    };
    let valid = match name {
        None => false,
        Some("custom") => {
            !req.permissions.is_empty() && req.permissions.iter().all(good_permission)
        }
        Some(_) => true,
    };
    let params = match req.to_new_session() {
        Ok(p) => p,
        Err(e) => {
            assert!(!valid, "valid request refused ({e}): {req:?}");
            assert!(!e.is_empty());
            return;
        }
    };
    assert!(valid, "invalid request accepted: {req:?}");
    let t = &params.session_type;
    assert_eq!(Some(t.name()), name);
    let ops: Vec<String> = match t {
        SessionType::Custom(ops) => ops
            .iter()
            .map(|o| format!("{}:{}", o.entity, o.action))
            .collect(),
        _ => Vec::new(),
    };
    if name == Some("custom") {
        assert_eq!(ops, req.permissions);
    }
    assert_eq!(parse_session_type(t.name(), &ops).as_ref(), Ok(t));
    if req.label.trim().is_empty() {
        assert_eq!(params.label, format!("{} session", t.name()));
    } else {
        assert_eq!(params.label, req.label);
    }
    assert_eq!(params.mailbox_addr, req.mailbox.clone().unwrap_or_default());
    assert_eq!(params.expiry, req.expiry_secs.map(Duration::from_secs));
    assert_eq!(
        params.first_connection_timeout,
        req.first_connection_timeout_secs.map(Duration::from_secs)
    );
    assert!(!params.dev_server);

    let now = UNIX_EPOCH + Duration::new(NOW_SECS, 500_000_000);
    let lifetime = params.expiry.unwrap_or(DEFAULT_EXPIRY).as_secs();
    let timeout = params
        .first_connection_timeout
        .unwrap_or(DEFAULT_FIRST_CONNECTION_TIMEOUT)
        .as_secs();
    let expiry = NOW_SECS.checked_add(lifetime);
    let deadline = NOW_SECS.checked_add(timeout);
    // A spend session needs a budget (these requests carry none).
    let valid = lifetime > 0
        && params.session_type != SessionType::Spend
        && expiry.is_some_and(|e| e <= LAST_CAVEAT_SECS)
        && deadline.is_some_and(|d| d <= LAST_SYSTEM_TIME_SECS);
    match params.check(now) {
        Ok(times) => {
            assert!(valid, "out-of-range times accepted: {req:?}");
            let at = |s: Option<u64>| UNIX_EPOCH + Duration::from_secs(s.expect("in range"));
            assert_eq!(times.created, at(Some(NOW_SECS)));
            assert_eq!(times.expiry, at(expiry));
            assert_eq!(times.first_connection_deadline, at(deadline));
            let caveat = times
                .time_before_caveat
                .strip_prefix("time-before ")
                .and_then(UnixTime::parse_rfc3339)
                .expect("the caveat is a time-before date");
            assert_eq!(
                (caveat.secs(), caveat.subsec_nanos()),
                (
                    i64::try_from(expiry.expect("in range")).expect("in range"),
                    0
                )
            );
        }
        Err(e) => assert!(!valid, "valid times refused ({e}): {req:?}"),
    }
}

fn check_id(s: &str) {
    let id_text = s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match s.parse::<SessionId>() {
        Ok(id) => {
            assert!(id_text, "{s:?} accepted as a session ID");
            let shown = id.to_string();
            assert!(shown.eq_ignore_ascii_case(s));
            assert_eq!(shown.parse::<SessionId>(), Ok(id));
        }
        Err(_) => assert!(!id_text, "{s:?} refused as a session ID"),
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space,
/// `%XX` a byte (a `%` not followed by two hex digits stays), invalid UTF-8 replaced.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|&c| char::from(c).to_digit(16));
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 2;
            }
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What `?phrase=` asks for, per the form-decoding model: `Some(wanted)`, or `None` if the
/// query is refused (a repeated `phrase`, or a value other than `true` and `false`).
fn model_phrase(query: &str) -> Option<bool> {
    let mut phrase = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k) == "phrase" {
            if phrase.is_some() {
                return None;
            }
            phrase = Some(match form_decode(v).as_str() {
                "true" => true,
                "false" => false,
                _ => return None,
            });
        }
    }
    Some(phrase.unwrap_or(false))
}

fn check_query(s: &str) {
    let Ok(uri) = format!("/v1/sessions/0a0b0c0d?{s}").parse::<http::Uri>() else {
        return;
    };
    let got = wants_phrase(&uri);
    let want = model_phrase(uri.query().unwrap_or(""));
    assert_eq!(
        got.as_ref().ok(),
        want.as_ref(),
        "query {:?}: {got:?}",
        uri.query()
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<AddSessionRequest>(data) {
        check_request(&req);
    }
    if let Ok(req) = Request::arbitrary_take_rest(Unstructured::new(data)) {
        check_request(&req.build());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        check_id(s);
        check_query(s);
    }
});
