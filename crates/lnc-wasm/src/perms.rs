//! What the session's macaroon allows, for the app's UI: `expiry`, `isReadOnly`,
//! `hasPerms(method)` (transport.md §5.1). The macaroon arrives as the node's auth data
//! (`Macaroon: <hex>`) in the Noise handshake; nothing here is a security check (the node
//! and LND enforce), it only lets the app hide what would be refused.
//!
//! `lnd_permissions.txt` is LND's method → required-ops table (one `method entity:action…`
//! line per method), written from `vectors/go/lnd_permissions.json` (LND v0.19, main
//! server and sub-servers); a test keeps the two equal.

use lnc_core::macaroon::{Macaroon, MacaroonId, PermissionTable};
use std::sync::OnceLock;

const TABLE: &str = include_str!("lnd_permissions.txt");

/// LND's permission table, parsed once.
pub fn table() -> &'static PermissionTable {
    static T: OnceLock<PermissionTable> = OnceLock::new();
    T.get_or_init(|| {
        PermissionTable::from_pairs(TABLE.lines().filter_map(|line| {
            let mut parts = line.split_whitespace();
            let method = parts.next()?;
            let ops: Vec<(&str, &str)> = parts.filter_map(|op| op.split_once(':')).collect();
            Some((method, ops))
        }))
    })
}

/// The session macaroon, decoded from the auth data.
#[derive(Clone, Debug)]
pub struct SessionMacaroon {
    mac: Macaroon,
    id: Option<MacaroonId>,
}

impl SessionMacaroon {
    /// Finds `Macaroon: <hex>` in the auth data and decodes it; `None` if there is none or
    /// it does not decode.
    pub fn from_auth_data(auth_data: &[u8]) -> Option<Self> {
        let header = lnc_tunnel::macaroon_from_auth_data(auth_data)?;
        let mac = Macaroon::from_hex(header.to_str().ok()?).ok()?;
        let id = mac.lnd_id().ok();
        Some(SessionMacaroon { mac, id })
    }

    /// Unix seconds of the earliest `time-before` caveat (`None`: never expires).
    pub fn expiry(&self) -> Option<i64> {
        self.mac.expires_at().ok().flatten().map(|t| t.secs())
    }

    /// Whether every op is a `read` (upstream's `wasmClientIsReadOnly`).
    pub fn is_read_only(&self) -> bool {
        self.id.as_ref().is_some_and(MacaroonId::is_read_only)
    }

    /// Whether the ops allow `method` (`pkg.Service.Method` or `/pkg.Service/Method`), by
    /// LND's rule: all required ops, or `uri:<method>`.
    pub fn has_perms(&self, method: &str) -> bool {
        let Some(id) = &self.id else { return false };
        let uri = to_uri(method);
        table().check(id, &uri).is_ok() || id.allows(&lnc_core::macaroon::Op::uri(&uri))
    }
}

/// `lnrpc.Lightning.GetInfo` → `/lnrpc.Lightning/GetInfo` (upstream's conversion).
pub fn to_uri(method: &str) -> String {
    if method.starts_with('/') {
        return method.to_owned();
    }
    match method.rsplit_once('.') {
        Some((svc, m)) => format!("/{svc}/{m}"),
        None => format!("/{method}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lnc_core::macaroon::lnd::{Preset, bake};
    use lnc_core::macaroon::{Op, RootKey};

    fn auth_for(ops: &[Op], expiry: Option<i64>) -> Vec<u8> {
        let id = MacaroonId::new([7; 16], b"0", ops);
        let mut mac = bake(&RootKey::new(&[1; 32]), &id);
        if let Some(secs) = expiry {
            let t = lnc_core::macaroon::UnixTime::new(secs, 0).unwrap();
            mac.add_first_party_caveat(
                lnc_core::macaroon::verify::time_before_caveat(t)
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap();
        }
        format!("Macaroon: {}", hex::encode(mac.to_v2_bytes())).into_bytes()
    }

    #[test]
    fn read_only_session() {
        let m = SessionMacaroon::from_auth_data(&auth_for(
            &Preset::ReadOnly.ops(),
            Some(1_900_000_000),
        ))
        .unwrap();
        assert!(m.is_read_only());
        assert_eq!(m.expiry(), Some(1_900_000_000));
        assert!(m.has_perms("lnrpc.Lightning.GetInfo"));
        assert!(m.has_perms("/lnrpc.Lightning/ListChannels"));
        assert!(!m.has_perms("lnrpc.Lightning.AddInvoice"));
        assert!(!m.has_perms("routerrpc.Router.SendPaymentV2"));
        assert!(!m.has_perms("lnrpc.Lightning.NoSuchMethod"));
    }

    #[test]
    fn admin_and_uri_sessions() {
        let m = SessionMacaroon::from_auth_data(&auth_for(&Preset::Admin.ops(), None)).unwrap();
        assert!(!m.is_read_only());
        assert_eq!(m.expiry(), None);
        assert!(m.has_perms("lnrpc.Lightning.AddInvoice"));
        assert!(m.has_perms("routerrpc.Router.SendPaymentV2"));
        let custom = SessionMacaroon::from_auth_data(&auth_for(
            &[Op::uri("/lnrpc.Lightning/AddInvoice")],
            None,
        ))
        .unwrap();
        assert!(custom.has_perms("lnrpc.Lightning.AddInvoice"));
        assert!(!custom.has_perms("lnrpc.Lightning.GetInfo"));
    }

    #[test]
    fn no_macaroon_no_perms() {
        assert!(SessionMacaroon::from_auth_data(b"").is_none());
        assert!(SessionMacaroon::from_auth_data(b"Macaroon: 00ff").is_none());
    }

    /// The embedded table equals LND's (the Go vector), method for method.
    #[test]
    fn table_matches_lnd_vector() {
        let dir = std::env::var("LNC_VECTORS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/go")
            });
        let text = std::fs::read_to_string(dir.join("lnd_permissions.json"))
            .expect("vector lnd_permissions.json (set LNC_VECTORS_DIR)");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut want = std::collections::BTreeMap::new();
        let mut add = |methods: &serde_json::Map<String, serde_json::Value>| {
            for (m, ops) in methods {
                let ops: Vec<Op> = ops
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| Op::new(o["entity"].as_str().unwrap(), o["action"].as_str().unwrap()))
                    .collect();
                want.insert(m.clone(), ops);
            }
        };
        add(v["methods"].as_object().unwrap());
        for (_, sub) in v["subservers"].as_object().unwrap() {
            add(sub["methods"].as_object().unwrap());
        }
        let t = table();
        assert_eq!(t.len(), want.len());
        for (m, ops) in &want {
            assert_eq!(t.required_ops(m), Some(ops.as_slice()), "{m}");
        }
    }

    /// Every method LND grants permissions for (main server and every sub-server) can be
    /// called by name, as lnc-web's `LndApi` calls them: the descriptor set is the LND release
    /// we serve, every service of it, not LND master (which dropped `SendPaymentSync` that
    /// lnc-web still offers).
    #[test]
    fn every_lnd_method_is_callable_by_name() {
        let reg = lnd_api::dynamic::Registry::lnd();
        let missing: Vec<&str> = TABLE
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|path| reg.method(path).is_err())
            .collect();
        assert_eq!(missing, Vec::<&str>::new(), "not callable by name");
        assert!(TABLE.lines().count() > 150);
        for service in [
            "autopilotrpc.Autopilot",
            "chainrpc.ChainNotifier",
            "invoicesrpc.Invoices",
            "lnrpc.Lightning",
            "routerrpc.Router",
            "signrpc.Signer",
            "walletrpc.WalletKit",
            "lnrpc.WalletUnlocker",
            "watchtowerrpc.Watchtower",
            "wtclientrpc.WatchtowerClient",
        ] {
            assert!(
                reg.methods()
                    .any(|m| m.full_name().starts_with(&format!("{service}."))),
                "lnc-web's LndApi service {service} is missing"
            );
        }
    }

    #[test]
    fn uri_conversion() {
        assert_eq!(
            to_uri("lnrpc.Lightning.GetInfo"),
            "/lnrpc.Lightning/GetInfo"
        );
        assert_eq!(to_uri("/a.B/C"), "/a.B/C");
    }
}
