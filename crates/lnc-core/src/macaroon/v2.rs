//! The go-macaroon V2 binary format, the only one LND writes.
//!
//! `0x02` ‖ header ‖ caveat sections ‖ `0x00` ‖ signature field, where a field is
//! `type (uvarint) ‖ length (uvarint) ‖ data`, a section is fields in strictly increasing type
//! order closed by `0x00`, the header is `[location(1)] identifier(2)`, a caveat section is
//! `[location(1)] identifier(2) [verification id(4)]` and the signature is `06 20 <32 bytes>`.
//!
//! Decoding follows go-macaroon's `UnmarshalBinary` check for check (so a macaroon LND accepts
//! is accepted here, and the typed errors name the same faults) and adds limits: at most
//! [`MAX_ENCODED_LEN`] bytes and [`MAX_CAVEATS`] caveats, both checked before anything is
//! allocated beyond the input's own size. One deliberate difference: an empty verification-id
//! field is refused ([`DecodeError::EmptyVerificationId`]); go-macaroon reads it as a
//! first-party caveat that then re-encodes differently.

use super::{Caveat, Macaroon, SIGNATURE_LEN, Signature, ThirdPartyCaveat};

/// The V2 binary version byte.
pub const VERSION_V2: u8 = 2;

/// Largest V2 encoding accepted or produced, in bytes. LND macaroons are a few hundred bytes
/// (a custom session listing every `uri:` op stays under 10 KiB); 64 KiB keeps a hostile
/// `macaroon` header from costing more than that.
pub const MAX_ENCODED_LEN: usize = 64 * 1024;

/// Most caveats accepted or produced (bounds the HMAC work a verifier does per macaroon).
pub const MAX_CAVEATS: usize = 1024;

/// Most macaroons in one encoded slice (a macaroon plus its discharges).
pub const MAX_SLICE_LEN: usize = 32;

const FIELD_EOS: u64 = 0;
const FIELD_LOCATION: u64 = 1;
const FIELD_IDENTIFIER: u64 = 2;
const FIELD_VERIFICATION_ID: u64 = 4;
const FIELD_SIGNATURE: u64 = 6;

/// Why bytes are not a V2 macaroon. Messages carry go-macaroon's wording for the same fault
/// (so logs can be compared with LND's) and say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("macaroon decode: empty macaroon data (no macaroon was supplied)")]
    Empty,
    /// Larger than [`MAX_ENCODED_LEN`].
    #[error("macaroon decode: macaroon is over the {max}-byte limit; it is not an LND macaroon")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_CAVEATS`] caveats.
    #[error("macaroon decode: more than {max} caveats; refusing to verify it")]
    TooManyCaveats {
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_SLICE_LEN`] macaroons in a slice.
    #[error("macaroon decode: more than {max} macaroons in one slice")]
    TooManyMacaroons {
        /// The limit.
        max: usize,
    },
    /// The first byte is an ASCII hex digit: a V1 (libmacaroons text) macaroon.
    #[error(
        "macaroon decode: this is a V1 macaroon (or still hex-encoded); only V2 binary is supported, decode hex first or re-bake it with LND"
    )]
    V1Unsupported,
    /// The first byte is neither `0x02` nor a V1 marker.
    #[error(
        "macaroon decode: cannot determine data format of binary-encoded macaroon (first byte {0:#04x}); the data is not a macaroon"
    )]
    UnknownFormat(u8),
    /// A varint runs off the end of the data.
    #[error(
        "macaroon decode: unmarshal v2: varint value extends past end of buffer (the macaroon is truncated)"
    )]
    VarintTruncated,
    /// A varint does not fit in 64 bits.
    #[error("macaroon decode: unmarshal v2: varint value out of range (the macaroon is corrupt)")]
    VarintOverflow,
    /// A field's length runs past the end of the data.
    #[error(
        "macaroon decode: unmarshal v2: field data extends past end of buffer (the macaroon is truncated; copy it again)"
    )]
    FieldTruncated,
    /// A section has no end-of-section marker.
    #[error(
        "macaroon decode: unmarshal v2: section extends past end of buffer (the macaroon is truncated; copy it again)"
    )]
    SectionTruncated,
    /// Field types in a section do not strictly increase (includes repeated fields).
    #[error("macaroon decode: unmarshal v2: fields out of order (the macaroon is corrupt)")]
    FieldsOutOfOrder,
    /// The header is not `[location] identifier`.
    #[error("macaroon decode: unmarshal v2: invalid macaroon header (the macaroon is corrupt)")]
    InvalidHeader,
    /// A caveat section has no identifier.
    #[error("macaroon decode: unmarshal v2: no identifier in caveat (the macaroon is corrupt)")]
    CaveatWithoutIdentifier,
    /// A first-party caveat carries a location.
    #[error(
        "macaroon decode: unmarshal v2: location not allowed in first party caveat (the macaroon is corrupt)"
    )]
    LocationInFirstPartyCaveat,
    /// A caveat section has more fields than location, identifier, verification id.
    #[error(
        "macaroon decode: unmarshal v2: extra fields found in caveat (the macaroon is corrupt)"
    )]
    ExtraCaveatFields,
    /// A caveat section has an unknown field after its identifier.
    #[error(
        "macaroon decode: unmarshal v2: invalid field found in caveat (the macaroon is corrupt)"
    )]
    InvalidCaveatField,
    /// A verification-id field is present but empty (ambiguous: go-macaroon would turn the
    /// caveat into a first-party one).
    #[error(
        "macaroon decode: unmarshal v2: empty verification id in caveat (the macaroon is corrupt)"
    )]
    EmptyVerificationId,
    /// The field after the caveats is not a signature.
    #[error(
        "macaroon decode: unmarshal v2: unexpected field found instead of signature (the macaroon is corrupt)"
    )]
    MissingSignature,
    /// The signature is not 32 bytes.
    #[error(
        "macaroon decode: unmarshal v2: signature has unexpected length {0} (want 32; the macaroon is corrupt)"
    )]
    BadSignatureLength(usize),
    /// Bytes follow the signature ([`Macaroon::decode`] only; see [`Macaroon::decode_lenient`]).
    #[error("macaroon decode: {0} bytes after the signature; pass exactly one macaroon")]
    TrailingData(usize),
    /// Text that should be hex is not.
    #[error("macaroon decode: not valid hex (expected the hex form LND prints)")]
    InvalidHex,
    /// Text that should be base64 is not.
    #[error("macaroon decode: not valid base64 (standard or URL-safe, padded or not)")]
    InvalidBase64,
}

/// A read cursor over borrowed bytes; every read is checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        // Go's binary.Uvarint: LEB128, at most 10 bytes, the 10th at most 1.
        let mut x: u64 = 0;
        for (i, &b) in self.buf.iter().enumerate() {
            if i == 10 {
                return Err(DecodeError::VarintOverflow);
            }
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(DecodeError::VarintOverflow);
                }
                x |= u64::from(b) << (7 * i);
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(x);
            }
            x |= u64::from(b & 0x7f) << (7 * i);
        }
        Err(DecodeError::VarintTruncated)
    }

    /// One field: `(type, data)`; the end-of-section marker is `(0, [])`.
    fn field(&mut self) -> Result<(u64, &'a [u8]), DecodeError> {
        let ty = self.uvarint()?;
        if ty == FIELD_EOS {
            return Ok((FIELD_EOS, &[]));
        }
        let len = self.uvarint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::FieldTruncated)?;
        if len > self.buf.len() {
            return Err(DecodeError::FieldTruncated);
        }
        let (data, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok((ty, data))
    }

    /// One section. Only the first three fields are kept (no valid section has more); the
    /// count tells the callers about the rest, so a hostile section allocates nothing.
    fn section(&mut self) -> Result<Section<'a>, DecodeError> {
        let mut s = Section {
            fields: [(0, &[]); 3],
            count: 0,
        };
        let mut prev: Option<u64> = None;
        loop {
            if self.is_empty() {
                return Err(DecodeError::SectionTruncated);
            }
            let (ty, data) = self.field()?;
            if ty == FIELD_EOS {
                return Ok(s);
            }
            if prev.is_some_and(|p| ty <= p) {
                return Err(DecodeError::FieldsOutOfOrder);
            }
            prev = Some(ty);
            if let Some(slot) = s.fields.get_mut(s.count) {
                *slot = (ty, data);
            }
            s.count += 1;
        }
    }
}

struct Section<'a> {
    fields: [(u64, &'a [u8]); 3],
    count: usize,
}

impl<'a> Section<'a> {
    /// The kept fields (at most three) and how many fields the section really had.
    fn kept(&self) -> &[(u64, &'a [u8])] {
        self.fields.get(..self.count.min(3)).unwrap_or_default()
    }
}

/// Encoded size of one field with `len` data bytes.
pub(crate) fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn varint_len(mut x: u64) -> usize {
    let mut n = 1;
    while x >= 0x80 {
        x >>= 7;
        n += 1;
    }
    n
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn put_field(out: &mut Vec<u8>, ty: u64, data: &[u8]) {
    put_uvarint(out, ty);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn parse_v2(data: &[u8]) -> Result<(Macaroon, usize), DecodeError> {
    let Some((&version, body)) = data.split_first() else {
        return Err(DecodeError::Empty);
    };
    if version != VERSION_V2 {
        return Err(if version.is_ascii_hexdigit() {
            DecodeError::V1Unsupported
        } else {
            DecodeError::UnknownFormat(version)
        });
    }
    let mut r = Reader { buf: body };

    let header = r.section()?;
    let mut rest = header.kept();
    let mut location: &[u8] = &[];
    let mut count = header.count;
    if let Some(((FIELD_LOCATION, loc), tail)) = rest.split_first() {
        location = loc;
        rest = tail;
        count -= 1;
    }
    let identifier = match rest.first() {
        Some(&(FIELD_IDENTIFIER, id)) if count == 1 => id,
        _ => return Err(DecodeError::InvalidHeader),
    };

    let mut caveats = Vec::new();
    loop {
        let sec = r.section()?;
        if sec.count == 0 {
            break;
        }
        if caveats.len() >= MAX_CAVEATS {
            return Err(DecodeError::TooManyCaveats { max: MAX_CAVEATS });
        }
        let mut rest = sec.kept();
        let mut count = sec.count;
        let mut cav_location: &[u8] = &[];
        if let Some(((FIELD_LOCATION, loc), tail)) = rest.split_first() {
            cav_location = loc;
            rest = tail;
            count -= 1;
        }
        let Some((&(FIELD_IDENTIFIER, id), rest)) = rest.split_first() else {
            return Err(DecodeError::CaveatWithoutIdentifier);
        };
        count -= 1;
        if count == 0 {
            if !cav_location.is_empty() {
                return Err(DecodeError::LocationInFirstPartyCaveat);
            }
            caveats.push(Caveat::FirstParty(id.to_vec()));
            continue;
        }
        if count != 1 {
            return Err(DecodeError::ExtraCaveatFields);
        }
        match rest.first() {
            Some(&(FIELD_VERIFICATION_ID, vid)) if !vid.is_empty() => {
                caveats.push(Caveat::ThirdParty(ThirdPartyCaveat {
                    location: cav_location.to_vec(),
                    id: id.to_vec(),
                    verification_id: vid.to_vec(),
                }));
            }
            Some(&(FIELD_VERIFICATION_ID, _)) => return Err(DecodeError::EmptyVerificationId),
            _ => return Err(DecodeError::InvalidCaveatField),
        }
    }

    let (ty, sig) = r.field()?;
    if ty != FIELD_SIGNATURE {
        return Err(DecodeError::MissingSignature);
    }
    let sig: [u8; SIGNATURE_LEN] = sig
        .try_into()
        .map_err(|_| DecodeError::BadSignatureLength(sig.len()))?;
    let consumed = data.len() - r.buf.len();
    let mac = Macaroon::from_parts(
        location.to_vec(),
        identifier.to_vec(),
        caveats,
        Signature::from_bytes(sig),
    );
    Ok((mac, consumed))
}

/// Runs the parser with the size cap applied: parsing only ever looks at the first
/// [`MAX_ENCODED_LEN`] bytes, and a macaroon cut off by the cap is reported as too large.
fn parse_capped(data: &[u8]) -> Result<(Macaroon, usize), DecodeError> {
    let window = data.get(..MAX_ENCODED_LEN).unwrap_or(data);
    match parse_v2(window) {
        Err(
            DecodeError::VarintTruncated
            | DecodeError::FieldTruncated
            | DecodeError::SectionTruncated
            | DecodeError::BadSignatureLength(_),
        ) if data.len() > MAX_ENCODED_LEN => Err(DecodeError::TooLarge {
            max: MAX_ENCODED_LEN,
        }),
        other => other,
    }
}

impl Macaroon {
    /// Decodes exactly one V2 macaroon; trailing bytes are an error. Use this for anything
    /// a peer or a user supplies.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        let (mac, used) = parse_capped(data)?;
        match data.len() - used {
            0 => Ok(mac),
            n => Err(DecodeError::TrailingData(n)),
        }
    }

    /// Decodes like go-macaroon's `UnmarshalBinary`, which LND uses: bytes after the
    /// signature are ignored. For a verifier that must accept exactly what LND accepts.
    pub fn decode_lenient(data: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_prefix(data).map(|(m, _)| m)
    }

    /// Decodes one macaroon from the start of `data`, returning it and the number of bytes
    /// it used (for concatenated macaroons).
    pub fn decode_prefix(data: &[u8]) -> Result<(Self, usize), DecodeError> {
        parse_capped(data)
    }

    /// Decodes from hex (LND's `BakeMacaroon` output, the `macaroon` gRPC metadata, the
    /// `Macaroon: <hex>` handshake payload). Surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<Self, DecodeError> {
        let text = text.trim();
        if text.len() / 2 > MAX_ENCODED_LEN {
            return Err(DecodeError::TooLarge {
                max: MAX_ENCODED_LEN,
            });
        }
        Self::decode(&hex_decode(text).ok_or(DecodeError::InvalidHex)?)
    }

    /// Decodes from base64 in any of the four forms go-macaroon accepts (standard or
    /// URL-safe alphabet, padded or not). Surrounding whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        let text = text.trim();
        if text.len() / 4 * 3 > MAX_ENCODED_LEN + 3 {
            return Err(DecodeError::TooLarge {
                max: MAX_ENCODED_LEN,
            });
        }
        Self::decode(&base64_decode(text).ok_or(DecodeError::InvalidBase64)?)
    }

    /// Length of [`Macaroon::to_v2_bytes`], computed without encoding.
    pub fn encoded_len(&self) -> usize {
        let mut n = 1;
        if !self.location.is_empty() {
            n += field_len(self.location.len());
        }
        n += field_len(self.identifier.len()) + 1;
        for cav in &self.caveats {
            n += match cav {
                Caveat::FirstParty(c) => field_len(c.len()),
                Caveat::ThirdParty(t) => {
                    let loc = if t.location.is_empty() {
                        0
                    } else {
                        field_len(t.location.len())
                    };
                    let vid = if t.verification_id.is_empty() {
                        0
                    } else {
                        field_len(t.verification_id.len())
                    };
                    loc + field_len(t.id.len()) + vid
                }
            } + 1;
        }
        n + 1 + field_len(SIGNATURE_LEN)
    }

    /// Encodes as V2 binary, byte for byte what go-macaroon's `MarshalBinary` writes (an
    /// empty location is left out, as Go does).
    pub fn to_v2_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_v2_into(&mut out);
        out
    }

    /// Appends the V2 binary encoding to `out` (a slice is macaroons back to back).
    pub fn encode_v2_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION_V2);
        if !self.location.is_empty() {
            put_field(out, FIELD_LOCATION, &self.location);
        }
        put_field(out, FIELD_IDENTIFIER, &self.identifier);
        out.push(0);
        for cav in &self.caveats {
            match cav {
                Caveat::FirstParty(c) => put_field(out, FIELD_IDENTIFIER, c),
                Caveat::ThirdParty(t) => {
                    if !t.location.is_empty() {
                        put_field(out, FIELD_LOCATION, &t.location);
                    }
                    put_field(out, FIELD_IDENTIFIER, &t.id);
                    if !t.verification_id.is_empty() {
                        put_field(out, FIELD_VERIFICATION_ID, &t.verification_id);
                    }
                }
            }
            out.push(0);
        }
        out.push(0);
        put_field(out, FIELD_SIGNATURE, self.signature.as_bytes());
    }
}

impl Macaroon {
    /// go-macaroon's V2 JSON (`MarshalJSON` of a V2 macaroon), byte for byte: fields `c`,
    /// `l`, `i`/`i64`, `s64`; binary values that are not UTF-8 go base64url (`…64`). For
    /// tools that exchange macaroons as JSON; LND itself uses the binary form.
    pub fn to_v2_json(&self) -> String {
        let mut out = String::from("{");
        let mut first = true;
        let mut key = |out: &mut String, k: &str| {
            if !core::mem::take(&mut first) {
                out.push(',');
            }
            json_string(out, k);
            out.push(':');
        };
        if !self.caveats.is_empty() {
            key(&mut out, "c");
            out.push('[');
            for (n, cav) in self.caveats.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let (loc, id, vid): (&[u8], &[u8], &[u8]) = match cav {
                    Caveat::FirstParty(c) => (&[], c, &[]),
                    Caveat::ThirdParty(t) => (&t.location, &t.id, &t.verification_id),
                };
                let mut fields: Vec<(&str, Vec<u8>)> = Vec::new();
                json_binary(&mut fields, "i", "i64", id, true);
                json_binary(&mut fields, "v", "v64", vid, false);
                if !loc.is_empty() {
                    fields.push(("l", loc.to_vec()));
                }
                json_object(&mut out, &fields);
            }
            out.push(']');
        }
        if !self.location.is_empty() {
            key(&mut out, "l");
            json_bytes(&mut out, &self.location);
        }
        let mut rest: Vec<(&str, Vec<u8>)> = Vec::new();
        json_binary(&mut rest, "i", "i64", &self.identifier, true);
        json_binary(&mut rest, "s", "s64", self.signature.as_bytes(), false);
        for (k, v) in rest {
            key(&mut out, k);
            json_bytes(&mut out, &v);
        }
        out.push('}');
        out
    }
}

/// go-macaroon `putJSONBinaryField`: text when allowed and UTF-8, else base64url; empty
/// values are omitted (`omitempty`).
fn json_binary<'k>(
    fields: &mut Vec<(&'k str, Vec<u8>)>,
    text_key: &'k str,
    b64_key: &'k str,
    value: &[u8],
    text_ok: bool,
) {
    use base64::Engine as _;
    match core::str::from_utf8(value) {
        Ok(t) if text_ok => {
            if !t.is_empty() {
                fields.push((text_key, t.as_bytes().to_vec()));
            }
        }
        _ => {
            if !value.is_empty() {
                let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
                fields.push((b64_key, enc.into_bytes()));
            }
        }
    }
}

fn json_object(out: &mut String, fields: &[(&str, Vec<u8>)]) {
    out.push('{');
    for (n, (k, v)) in fields.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        json_bytes(out, v);
    }
    out.push('}');
}

/// A JSON string escaped as Go's `encoding/json` does (HTML-safe: `<`, `>`, `&`, U+2028 and
/// U+2029 as `\u` escapes).
fn json_string(out: &mut String, s: &str) {
    json_bytes(out, s.as_bytes());
}

/// As [`json_string`] for bytes that may not be UTF-8: Go writes `\\ufffd` for each invalid
/// byte.
fn json_bytes(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        json_escape(out, chunk.valid());
        for _ in chunk.invalid() {
            out.push_str("\\ufffd");
        }
    }
    out.push('"');
}

fn json_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Decodes concatenated V2 macaroons (go-macaroon `Slice.UnmarshalBinary`): a macaroon and
/// its discharges travel this way.
pub fn decode_slice(mut data: &[u8]) -> Result<Vec<Macaroon>, DecodeError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if out.len() >= MAX_SLICE_LEN {
            return Err(DecodeError::TooManyMacaroons { max: MAX_SLICE_LEN });
        }
        let (mac, used) = parse_capped(data)?;
        out.push(mac);
        data = data.get(used..).unwrap_or_default();
    }
    Ok(out)
}

/// Encodes macaroons back to back (go-macaroon `Slice.MarshalBinary`).
pub fn encode_slice(macaroons: &[Macaroon]) -> Vec<u8> {
    let mut out = Vec::with_capacity(macaroons.iter().map(Macaroon::encoded_len).sum());
    for m in macaroons {
        m.encode_v2_into(&mut out);
    }
    out
}

/// Lower-case hex (the form LND prints macaroons in).
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Hex to bytes (either case); `None` on odd length or a non-hex character.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

/// Base64 to bytes in any of go-macaroon's four accepted forms.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CFG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CFG);
    const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CFG);
    if text.bytes().any(|b| b == b'-' || b == b'_') {
        URL.decode(text).ok()
    } else {
        STD.decode(text).ok()
    }
}
