//! LND's macaroon identifiers and permissions.
//!
//! LND (through macaroon-bakery) puts the permissions inside the macaroon's identifier:
//! `0x03` (bakery `Version3`) ‖ protobuf `MacaroonId { bytes nonce = 1; bytes storageId = 2;
//! repeated Op ops = 3 }` with `Op { string entity = 1; repeated string actions = 2 }`. The
//! storage ID names the root key; litd's session macaroons use the **decimal ASCII** form of
//! the `u64` `0xFFEEDDCC ‖ session ID` (as LND's `BakeMacaroon` stores it), not raw bytes.
//!
//! A method is allowed when the macaroon holds every op the method requires, or the single op
//! `uri:<full method>` (LND's `CheckMacAuth`). [`PermissionTable`] is the method → ops map
//! (LND serves it as `ListPermissions`; the vector file `lnd_permissions.json` has its shape),
//! kept as plain data so the node and the LND stand-in can embed their own.
//!
//! The protobuf is encoded by hand (a dozen lines, no prost in lnc-core) exactly as Go's
//! encoder writes it; the decoder accepts what Go's accepts apart from groups, skips unknown
//! fields (proto3), and requires UTF-8 strings.

use core::fmt;
use std::collections::BTreeMap;

use rand_core::CryptoRng;

use super::verify::{CaveatChecker, VerifyError, check_condition};
use super::{Macaroon, RootKey};

/// Bakery's `LatestVersion` (Version3): the first byte of every LND macaroon id.
pub const ID_VERSION: u8 = 3;
/// Length of the random nonce bakery puts in each id.
pub const NONCE_LEN: usize = 16;
/// The location LND bakes into its macaroons.
pub const LND_LOCATION: &str = "lnd";
/// LND's default root key ID (`admin.macaroon`, `readonly.macaroon`, …).
pub const DEFAULT_ROOT_KEY_ID: &[u8] = b"0";
/// The high 32 bits of litd's session ("super macaroon") root key IDs.
pub const SUPER_MACAROON_PREFIX: u32 = 0xFFEE_DDCC;
/// LND's entity for per-method permissions (`uri:/lnrpc.Lightning/GetInfo`).
pub const ENTITY_URI: &str = "uri";

/// One permission: an entity and an action, e.g. `info:read`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Op {
    /// What is acted on (`info`, `offchain`, `uri`, …).
    pub entity: String,
    /// What may be done (`read`, `write`, `generate`, or a method for `uri`).
    pub action: String,
}

impl Op {
    /// Builds an op from its two parts.
    pub fn new(entity: &str, action: &str) -> Self {
        Op {
            entity: entity.into(),
            action: action.into(),
        }
    }

    /// The `uri:<full method>` op that grants exactly one method.
    pub fn uri(full_method: &str) -> Self {
        Op::new(ENTITY_URI, full_method)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.entity, self.action)
    }
}

/// Builds ops from `(entity, action)` pairs (the shape of the preset tables below).
pub fn ops_from_pairs(pairs: &[(&str, &str)]) -> Vec<Op> {
    pairs.iter().map(|&(e, a)| Op::new(e, a)).collect()
}

/// Bakery's `CanonicalOps`: sorted by entity then action, duplicates removed. LND ids list
/// ops in this order, so the same permissions always give the same id layout.
pub fn canonical_ops(ops: &[Op]) -> Vec<Op> {
    let mut v = ops.to_vec();
    v.sort();
    v.dedup();
    v
}

/// The protobuf `Op`: one entity with all its actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpGroup {
    /// The entity.
    pub entity: String,
    /// Its actions, in id order.
    pub actions: Vec<String>,
}

/// Why bytes are not an LND macaroon id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("macaroon id: empty identifier; not an LND macaroon")]
    Empty,
    /// The version byte is not 3.
    #[error("macaroon id: version {0} is not bakery version 3; not an LND macaroon")]
    UnsupportedVersion(u8),
    /// The protobuf is truncated.
    #[error("macaroon id: protobuf truncated (the macaroon is corrupt)")]
    Truncated,
    /// A varint does not fit in 64 bits.
    #[error("macaroon id: protobuf varint overflow (the macaroon is corrupt)")]
    VarintOverflow,
    /// A known field has the wrong wire type, or a group/invalid wire type appears.
    #[error(
        "macaroon id: field {field} has wire type {wire_type}, not allowed (the macaroon is corrupt)"
    )]
    BadWireType {
        /// The field number.
        field: u64,
        /// The wire type found.
        wire_type: u8,
    },
    /// Field number 0.
    #[error("macaroon id: protobuf field number 0 (the macaroon is corrupt)")]
    ZeroField,
    /// A string field is not UTF-8.
    #[error("macaroon id: string field contains invalid UTF-8 (the macaroon is corrupt)")]
    InvalidUtf8,
}

/// LND's macaroon identifier: who minted it (nonce), which root key (storage ID), and which
/// ops it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacaroonId {
    /// Random per macaroon (bakery uses 16 bytes).
    pub nonce: Vec<u8>,
    /// The root key ID, as LND stores it (`"0"` by default, decimal ASCII for litd sessions).
    pub storage_id: Vec<u8>,
    /// Ops grouped by entity, in canonical order when minted by bakery.
    pub ops: Vec<OpGroup>,
}

impl MacaroonId {
    /// Builds the id bakery would for these ops: canonical order, grouped by entity.
    pub fn new(nonce: [u8; NONCE_LEN], storage_id: &[u8], ops: &[Op]) -> Self {
        let mut groups: Vec<OpGroup> = Vec::new();
        for op in canonical_ops(ops) {
            match groups.last_mut() {
                Some(g) if g.entity == op.entity => g.actions.push(op.action),
                _ => groups.push(OpGroup {
                    entity: op.entity,
                    actions: vec![op.action],
                }),
            }
        }
        MacaroonId {
            nonce: nonce.to_vec(),
            storage_id: storage_id.to_vec(),
            ops: groups,
        }
    }

    /// As [`MacaroonId::new`] with a fresh random nonce from the caller's CSPRNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, storage_id: &[u8], ops: &[Op]) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        Self::new(nonce, storage_id, ops)
    }

    /// The storage ID of a litd session macaroon: decimal ASCII of `0xFFEEDDCC ‖ session ID`.
    pub fn session_storage_id(session_id: [u8; 4]) -> Vec<u8> {
        super_macaroon_root_key_id(session_id)
            .to_string()
            .into_bytes()
    }

    /// Encodes as LND does: version byte, then the protobuf fields in number order, empty
    /// scalar fields left out.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ID_VERSION];
        put_bytes(&mut out, 1, &self.nonce, false);
        put_bytes(&mut out, 2, &self.storage_id, false);
        for g in &self.ops {
            let mut inner = Vec::new();
            put_bytes(&mut inner, 1, g.entity.as_bytes(), false);
            for a in &g.actions {
                put_bytes(&mut inner, 2, a.as_bytes(), true);
            }
            put_bytes(&mut out, 3, &inner, true);
        }
        out
    }

    /// Decodes an LND macaroon identifier ([`Macaroon::identifier`]).
    pub fn decode(id: &[u8]) -> Result<Self, IdError> {
        let (&version, body) = id.split_first().ok_or(IdError::Empty)?;
        if version != ID_VERSION {
            return Err(IdError::UnsupportedVersion(version));
        }
        let mut out = MacaroonId {
            nonce: Vec::new(),
            storage_id: Vec::new(),
            ops: Vec::new(),
        };
        let mut r = PbReader { buf: body };
        while let Some((field, value)) = r.next_field()? {
            match (field, value) {
                (1, PbValue::Bytes(b)) => out.nonce = b.to_vec(),
                (2, PbValue::Bytes(b)) => out.storage_id = b.to_vec(),
                (3, PbValue::Bytes(b)) => out.ops.push(decode_op(b)?),
                (1..=3, v) => {
                    return Err(IdError::BadWireType {
                        field,
                        wire_type: v.wire_type(),
                    });
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// All ops, flattened in id order.
    pub fn ops(&self) -> Vec<Op> {
        self.ops
            .iter()
            .flat_map(|g| g.actions.iter().map(|a| Op::new(&g.entity, a)))
            .collect()
    }

    /// Whether the id grants `op`.
    pub fn allows(&self, op: &Op) -> bool {
        self.ops
            .iter()
            .any(|g| g.entity == op.entity && g.actions.contains(&op.action))
    }

    /// True when every op's action is `read` (so no method that changes anything is
    /// allowed). A `uri:` op is never read-only. An id with no ops is read-only.
    pub fn is_read_only(&self) -> bool {
        self.ops
            .iter()
            .all(|g| g.entity != ENTITY_URI && g.actions.iter().all(|a| a == "read"))
    }

    /// The storage ID as LiT reads it (`strconv.ParseUint(storageId, 10, 64)`).
    pub fn root_key_id_u64(&self) -> Option<u64> {
        let s = core::str::from_utf8(&self.storage_id).ok()?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// The litd session ID if this is a session ("super") macaroon: root key ID with the
    /// `FFEEDDCC` prefix, session ID in the low four bytes.
    pub fn session_id(&self) -> Option<[u8; 4]> {
        let id = self.root_key_id_u64()?;
        ((id >> 32) as u32 == SUPER_MACAROON_PREFIX).then(|| (id as u32).to_be_bytes())
    }
}

/// litd's session root key ID: `0xFFEEDDCC ‖ session ID` as a big-endian `u64`.
pub fn super_macaroon_root_key_id(session_id: [u8; 4]) -> u64 {
    (u64::from(SUPER_MACAROON_PREFIX) << 32) | u64::from(u32::from_be_bytes(session_id))
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A length-delimited field; proto3 leaves empty singular fields out, repeated ones stay.
fn put_bytes(out: &mut Vec<u8>, field: u64, data: &[u8], always: bool) {
    if data.is_empty() && !always {
        return;
    }
    put_varint(out, field << 3 | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

enum PbValue<'a> {
    Varint,
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
}

impl PbValue<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            PbValue::Varint => 0,
            PbValue::Fixed64 => 1,
            PbValue::Bytes(_) => 2,
            PbValue::Fixed32 => 5,
        }
    }
}

struct PbReader<'a> {
    buf: &'a [u8],
}

impl<'a> PbReader<'a> {
    fn varint(&mut self) -> Result<u64, IdError> {
        let mut x: u64 = 0;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            if i == 9 && b > 1 {
                return Err(IdError::VarintOverflow);
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(x);
            }
        }
        if self.buf.len() >= 10 {
            Err(IdError::VarintOverflow)
        } else {
            Err(IdError::Truncated)
        }
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], IdError> {
        let n = usize::try_from(n).map_err(|_| IdError::Truncated)?;
        if n > self.buf.len() {
            return Err(IdError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Option<(u64, PbValue<'a>)>, IdError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 {
            return Err(IdError::ZeroField);
        }
        let value = match (tag & 7) as u8 {
            0 => {
                self.varint()?;
                PbValue::Varint
            }
            1 => {
                self.take(8)?;
                PbValue::Fixed64
            }
            2 => {
                let n = self.varint()?;
                PbValue::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                PbValue::Fixed32
            }
            wire_type => return Err(IdError::BadWireType { field, wire_type }),
        };
        Ok(Some((field, value)))
    }
}

fn utf8(b: &[u8]) -> Result<String, IdError> {
    core::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| IdError::InvalidUtf8)
}

fn decode_op(buf: &[u8]) -> Result<OpGroup, IdError> {
    let mut g = OpGroup {
        entity: String::new(),
        actions: Vec::new(),
    };
    let mut r = PbReader { buf };
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, PbValue::Bytes(b)) => g.entity = utf8(b)?,
            (2, PbValue::Bytes(b)) => g.actions.push(utf8(b)?),
            (1..=2, v) => {
                return Err(IdError::BadWireType {
                    field,
                    wire_type: v.wire_type(),
                });
            }
            _ => {}
        }
    }
    Ok(g)
}

/// LND's `readPermissions`: the ops of `readonly.macaroon` and of litd read-only sessions'
/// LND part.
pub const READ_PERMISSIONS: &[(&str, &str)] = &[
    ("onchain", "read"),
    ("offchain", "read"),
    ("address", "read"),
    ("message", "read"),
    ("peers", "read"),
    ("info", "read"),
    ("invoices", "read"),
    ("signer", "read"),
    ("macaroon", "read"),
];

/// LND's `writePermissions` (admin = read + write).
pub const WRITE_PERMISSIONS: &[(&str, &str)] = &[
    ("onchain", "write"),
    ("offchain", "write"),
    ("address", "write"),
    ("message", "write"),
    ("peers", "write"),
    ("info", "write"),
    ("invoices", "write"),
    ("signer", "generate"),
    ("macaroon", "generate"),
    ("macaroon", "write"),
];

/// LND's `invoicePermissions`: the ops of `invoice.macaroon`.
pub const INVOICE_PERMISSIONS: &[(&str, &str)] = &[
    ("invoices", "read"),
    ("invoices", "write"),
    ("address", "read"),
    ("address", "write"),
    ("onchain", "read"),
];

/// The op sets of LND's default macaroons, which the node offers as session types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// `readonly.macaroon`: every LND entity, `read` only.
    ReadOnly,
    /// `admin.macaroon`: read + write (+ `generate`) on everything.
    Admin,
    /// `invoice.macaroon`: create and look up invoices, get addresses.
    Invoice,
}

impl Preset {
    /// The ops, in LND's listing order (bake through [`MacaroonId::new`] for canonical order).
    pub fn ops(self) -> Vec<Op> {
        match self {
            Preset::ReadOnly => ops_from_pairs(READ_PERMISSIONS),
            Preset::Admin => {
                let mut v = ops_from_pairs(READ_PERMISSIONS);
                v.extend(ops_from_pairs(WRITE_PERMISSIONS));
                v
            }
            Preset::Invoice => ops_from_pairs(INVOICE_PERMISSIONS),
        }
    }
}

/// Why a method is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionError {
    /// The method is not in the table (LND refuses it too).
    #[error("{0}: unknown permissions required for method")]
    UnknownMethod(String),
    /// The macaroon lacks a required op and has no `uri:` op for the method.
    #[error(
        "macaroon permission denied: it lacks {missing} (ask for a session with more permissions)"
    )]
    Denied {
        /// The first missing op.
        missing: Op,
    },
}

/// The method → required ops table (LND's `MainRPCServerPermissions` plus sub-servers, as
/// served by `ListPermissions`). Plain data: build it from `(method, [(entity, action)])`
/// pairs, e.g. parsed from `lnd_permissions.json` or embedded by the LND stand-in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionTable {
    methods: BTreeMap<String, Vec<Op>>,
}

impl PermissionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a table from `(method, ops)` pairs; a repeated method replaces the earlier one.
    pub fn from_pairs<M, I, E, A>(pairs: impl IntoIterator<Item = (M, I)>) -> Self
    where
        M: Into<String>,
        I: IntoIterator<Item = (E, A)>,
        E: AsRef<str>,
        A: AsRef<str>,
    {
        let mut t = Self::new();
        for (m, ops) in pairs {
            t.insert(
                m,
                ops.into_iter()
                    .map(|(e, a)| Op::new(e.as_ref(), a.as_ref()))
                    .collect(),
            );
        }
        t
    }

    /// Sets the ops a method requires (all of them are needed).
    pub fn insert(&mut self, method: impl Into<String>, ops: Vec<Op>) {
        self.methods.insert(method.into(), ops);
    }

    /// The ops a method requires, or `None` for an unknown method.
    pub fn required_ops(&self, full_method: &str) -> Option<&[Op]> {
        self.methods.get(full_method).map(Vec::as_slice)
    }

    /// Number of methods.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// Methods and their ops, sorted by method.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Op])> {
        self.methods.iter().map(|(m, o)| (m.as_str(), o.as_slice()))
    }

    /// Every distinct op the table mentions, canonical order (what an admin session needs).
    pub fn all_ops(&self) -> Vec<Op> {
        let all: Vec<Op> = self.methods.values().flatten().cloned().collect();
        canonical_ops(&all)
    }

    /// LND's rule: the id must grant every required op, or `uri:<method>`.
    pub fn check(&self, id: &MacaroonId, full_method: &str) -> Result<(), PermissionError> {
        let required = self
            .required_ops(full_method)
            .ok_or_else(|| PermissionError::UnknownMethod(full_method.into()))?;
        check_ops(id, required, full_method)
    }
}

fn check_ops(id: &MacaroonId, required: &[Op], full_method: &str) -> Result<(), PermissionError> {
    match required.iter().find(|op| !id.allows(op)) {
        None => Ok(()),
        Some(_) if id.allows(&Op::uri(full_method)) => Ok(()),
        Some(missing) => Err(PermissionError::Denied {
            missing: missing.clone(),
        }),
    }
}

/// Why LND-style authorization failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The identifier is not an LND macaroon id.
    #[error(transparent)]
    Id(#[from] IdError),
    /// Signature or caveat failure.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The macaroon is authentic but does not grant the method.
    #[error(transparent)]
    Permission(#[from] PermissionError),
}

/// Mints an LND-style macaroon (`location = "lnd"`, no caveats) for an id: what LND's
/// `BakeMacaroon` returns for the same root key and nonce.
pub fn bake(root_key: &RootKey, id: &MacaroonId) -> Macaroon {
    Macaroon::new(root_key, &id.encode(), LND_LOCATION.as_bytes())
}

impl Macaroon {
    /// Decodes the identifier as an LND macaroon id.
    pub fn lnd_id(&self) -> Result<MacaroonId, IdError> {
        MacaroonId::decode(&self.identifier)
    }

    /// The ops this LND macaroon grants (from its id; no signature check).
    pub fn lnd_ops(&self) -> Result<Vec<Op>, IdError> {
        Ok(self.lnd_id()?.ops())
    }

    /// Whether this LND macaroon only grants `read` ops (see [`MacaroonId::is_read_only`]).
    pub fn is_read_only(&self) -> Result<bool, IdError> {
        Ok(self.lnd_id()?.is_read_only())
    }

    /// Whether this macaroon's ops satisfy `full_method` per `table` (no signature or caveat
    /// check: for a client deciding what to offer, not for a verifier).
    pub fn has_permission_for_method(
        &self,
        table: &PermissionTable,
        full_method: &str,
    ) -> Result<bool, IdError> {
        Ok(table.check(&self.lnd_id()?, full_method).is_ok())
    }

    /// LND's `CheckMacAuth` for a root key the caller looked up by
    /// [`MacaroonId::storage_id`]: the id must decode, the signature must match, every
    /// first-party caveat must pass `checker`, and the id must grant all of `required` or
    /// `uri:<full_method>`.
    pub fn check_mac_auth<C: CaveatChecker + ?Sized>(
        &self,
        root_key: &RootKey,
        checker: &C,
        required: &[Op],
        full_method: &str,
    ) -> Result<MacaroonId, AuthError> {
        let id = self.lnd_id()?;
        for cond in self.verify_signature(root_key)? {
            check_condition(cond, checker)?;
        }
        check_ops(&id, required, full_method)?;
        Ok(id)
    }
}
