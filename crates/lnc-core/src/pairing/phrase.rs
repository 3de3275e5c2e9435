//! The pairing phrase: ten words of the BIP-39 English list ⇄ 14 bytes of entropy.
//!
//! The phrase is the only secret the node operator hands to the app. It carries 110 bits
//! (ten 11-bit word indices, packed MSB-first, plus 2 zero bits to fill 14 bytes). Unlike
//! BIP-39 there is **no checksum**: every combination of ten list words is a valid phrase,
//! so a typo can only be caught by the word list itself. That is why parsing here is strict
//! (Go maps an unknown word silently to `abandon`, which turns a typo into a phrase that
//! names the wrong mailbox streams and just times out).

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Number of words in a pairing phrase.
pub const NUM_WORDS: usize = 10;
/// Bits carried by each word (the word list has 2^11 = 2048 entries).
pub const BITS_PER_WORD: usize = 11;
/// Length of the pairing entropy: ceil(10 · 11 / 8) bytes; the last 2 bits are always zero.
pub const ENTROPY_LEN: usize = 14;

/// The two unused low bits of the last entropy byte (110 bits of words in 112 bits of bytes).
const PAD_MASK: u8 = 0b11;
/// Longest word in the BIP-39 English list (e.g. `abstract`): 8 letters.
const MAX_WORD_LEN: usize = 8;
/// Suggestions are list words at most this many edits away from the typed word.
const MAX_SUGGESTION_DISTANCE: usize = 2;
/// At most this many suggestions are offered for an unknown word.
const MAX_SUGGESTIONS: usize = 3;

/// The BIP-39 English word list (index 0 = `abandon`, 2047 = `zoo`), which is lnd's
/// `aezeed.DefaultWordList` word for word. Only the list is used, never BIP-39 mnemonics.
fn word_list() -> &'static [&'static str; 2048] {
    bip39::Language::English.word_list()
}

/// Why a pairing phrase or stored entropy was refused.
///
/// These come from what a person typed or from storage, so each says what to fix. The
/// messages never contain the typed words: they are parts of a secret and error messages get
/// logged. (The suggestions of [`PhraseError::UnknownWord`] are available as a field for the
/// UI to show, and are redacted in `Debug` for the same reason.)
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhraseError {
    /// The phrase does not have exactly ten words.
    #[error(
        "pairing phrase: expected {expected} words separated by spaces, found {found}; copy the whole phrase from the node"
    )]
    WrongWordCount {
        /// Always [`NUM_WORDS`], for the message.
        expected: usize,
        /// How many whitespace-separated words were found.
        found: usize,
    },
    /// A word is not in the word list.
    #[error("pairing phrase: word {position} is not in the word list; check its spelling")]
    UnknownWord {
        /// 1-based position of the first unknown word.
        position: usize,
        /// Up to three list words within edit distance 2 of the typed word, closest first
        /// (ties in list order). Derived from the secret: show to the user, do not log.
        suggestions: Vec<&'static str>,
    },
    /// Stored entropy is not 14 bytes.
    #[error(
        "pairing entropy: expected {ENTROPY_LEN} bytes, got {0}; the stored session is corrupt"
    )]
    WrongEntropyLength(usize),
    /// Stored entropy has one of the two padding bits set, so it cannot come from a phrase.
    #[error(
        "pairing entropy: the last 2 bits must be zero (it was not derived from a 10-word phrase); the stored session is corrupt"
    )]
    NonCanonicalEntropy,
}

impl PhraseError {
    /// What to show the person typing, after the error: "did you mean …?" for a misspelled
    /// word with near list words, else `None`. Kept out of `Display` because error messages
    /// get logged and the suggestions spell out most of a secret word; a prompt that shows
    /// this to the same person who typed the word leaks nothing.
    pub fn hint(&self) -> Option<String> {
        match self {
            PhraseError::UnknownWord { suggestions, .. } => match suggestions.as_slice() {
                [] => None,
                [one] => Some(format!("did you mean \"{one}\"?")),
                [init @ .., last] => Some(format!(
                    "did you mean {} or \"{last}\"?",
                    init.iter()
                        .map(|w| format!("\"{w}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            _ => None,
        }
    }
}

impl fmt::Debug for PhraseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhraseError::WrongWordCount { expected, found } => f
                .debug_struct("WrongWordCount")
                .field("expected", expected)
                .field("found", found)
                .finish(),
            PhraseError::UnknownWord {
                position,
                suggestions,
            } => f
                .debug_struct("UnknownWord")
                .field("position", position)
                .field(
                    "suggestions",
                    &format_args!("<{} redacted>", suggestions.len()),
                )
                .finish(),
            PhraseError::WrongEntropyLength(n) => {
                f.debug_tuple("WrongEntropyLength").field(n).finish()
            }
            PhraseError::NonCanonicalEntropy => f.write_str("NonCanonicalEntropy"),
        }
    }
}

/// The 14-byte pairing entropy `E`, always canonical (last 2 bits zero).
///
/// `E` is the root secret of a pairing: the first-connection stream ID is `SHA512(E)` and the
/// SPAKE2 password is `scrypt(E, E)`. Both sides must use byte-identical values, and Go only
/// ever uses the value that went through the words, whose padding bits are zero — so this type
/// cannot hold anything else. Zeroized on drop; `Debug` prints `<redacted>`; equality is
/// constant-time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Entropy([u8; ENTROPY_LEN]);

impl Entropy {
    /// Draws fresh entropy (110 random bits) for a new session, from a caller-supplied CSPRNG
    /// (lnc-core reads no global RNG, so the same code runs in wasm and under fixed-seed tests).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; ENTROPY_LEN]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_raw_normalizing(&bytes)
    }

    /// Takes any 14 bytes and clears the 2 padding bits, exactly as Go's
    /// `NewPassphraseEntropy` does by converting to words and back.
    pub fn from_raw_normalizing(raw: &[u8; ENTROPY_LEN]) -> Self {
        let mut e = Entropy(*raw);
        e.0[ENTROPY_LEN - 1] &= !PAD_MASK;
        e
    }

    /// Parses stored entropy (e.g. a node's session record). Refuses a wrong length and set
    /// padding bits instead of normalising them: either means the record is corrupt, and a
    /// silently changed secret would only surface later as a connection that never meets.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PhraseError> {
        let arr: [u8; ENTROPY_LEN] = bytes
            .try_into()
            .map_err(|_| PhraseError::WrongEntropyLength(bytes.len()))?;
        let e = Entropy(arr);
        if e.0[ENTROPY_LEN - 1] & PAD_MASK != 0 {
            return Err(PhraseError::NonCanonicalEntropy);
        }
        Ok(e)
    }

    /// The 14 bytes, for hashing and encrypted storage. Do not log them.
    pub fn as_bytes(&self) -> &[u8; ENTROPY_LEN] {
        &self.0
    }

    /// The ten 11-bit word indices, MSB-first (Go's `kkdai/bstream` order).
    fn indices(&self) -> Zeroizing<[u16; NUM_WORDS]> {
        let mut acc = Zeroizing::new([0u8; 16]);
        acc[..ENTROPY_LEN].copy_from_slice(&self.0);
        // 112 bits in the top of a u128; word i is bits [11i, 11i+11) from the top.
        let mut v = Zeroizing::new(u128::from_be_bytes(*acc));
        let mut out = Zeroizing::new([0u16; NUM_WORDS]);
        for (i, slot) in out.iter_mut().enumerate() {
            let shift = 128 - BITS_PER_WORD * (i + 1);
            *slot = ((*v >> shift) & 0x7ff) as u16;
        }
        *v = 0;
        out
    }

    /// Packs ten 11-bit indices MSB-first and appends 2 zero bits (Go's
    /// `PassphraseMnemonicToEntropy`). Indices are masked to 11 bits.
    fn from_indices(indices: &[u16; NUM_WORDS]) -> Self {
        let mut v = Zeroizing::new(0u128);
        for (i, &idx) in indices.iter().enumerate() {
            let shift = 128 - BITS_PER_WORD * (i + 1);
            *v |= u128::from(idx & 0x7ff) << shift;
        }
        let bytes = Zeroizing::new(v.to_be_bytes());
        let mut e = Entropy([0u8; ENTROPY_LEN]);
        e.0.copy_from_slice(&bytes[..ENTROPY_LEN]);
        e
    }
}

impl PartialEq for Entropy {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Entropy {}

impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy(<redacted>)")
    }
}

/// A pairing phrase: the ten-word form of an [`Entropy`].
///
/// This is what people see and type. It deliberately implements neither `Display` nor a
/// revealing `Debug`: showing the phrase is always an explicit call
/// ([`PairingPhrase::expose_words`] or [`PairingPhrase::to_phrase_string`]), so it cannot leak
/// into a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingPhrase(Entropy);

impl PairingPhrase {
    /// Generates a phrase for a new session (what the node does when creating one).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        PairingPhrase(Entropy::generate(rng))
    }

    /// The phrase for the given entropy (every entropy value has exactly one phrase).
    pub fn from_entropy(entropy: Entropy) -> Self {
        PairingPhrase(entropy)
    }

    /// Parses a phrase as typed or pasted by a person: exactly ten words, separated by any
    /// whitespace (spaces, tabs, newlines, several in a row, leading/trailing), matched
    /// case-insensitively against the word list.
    ///
    /// Stricter than Go on purpose: a wrong word count or an unknown word is an error, with
    /// the position and spelling suggestions for the first unknown word. (Go silently uses
    /// `abandon` for unknown or missing words.)
    pub fn parse(phrase: &str) -> Result<Self, PhraseError> {
        let found = phrase.split_whitespace().count();
        if found != NUM_WORDS {
            return Err(PhraseError::WrongWordCount {
                expected: NUM_WORDS,
                found,
            });
        }
        Self::from_words(phrase.split_whitespace())
    }

    /// Builds a phrase from separately entered words (e.g. ten input boxes). Each word is
    /// trimmed of surrounding whitespace and matched case-insensitively; the same errors as
    /// [`PairingPhrase::parse`] apply.
    pub fn from_words<'w, I>(words: I) -> Result<Self, PhraseError>
    where
        I: IntoIterator<Item = &'w str>,
    {
        let mut indices = Zeroizing::new([0u16; NUM_WORDS]);
        let mut found = 0usize;
        let mut first_unknown: Option<(usize, &'w str)> = None;
        for word in words {
            let word = word.trim();
            if let Some(slot) = indices.get_mut(found) {
                match lookup(word) {
                    Some(idx) => *slot = idx,
                    None => {
                        if first_unknown.is_none() {
                            first_unknown = Some((found, word));
                        }
                    }
                }
            }
            found += 1;
        }
        if found != NUM_WORDS {
            return Err(PhraseError::WrongWordCount {
                expected: NUM_WORDS,
                found,
            });
        }
        if let Some((i, word)) = first_unknown {
            return Err(PhraseError::UnknownWord {
                position: i + 1,
                suggestions: suggestions(word),
            });
        }
        Ok(PairingPhrase(Entropy::from_indices(&indices)))
    }

    /// The entropy this phrase encodes.
    pub fn entropy(&self) -> &Entropy {
        &self.0
    }

    /// Consumes the phrase, keeping only its entropy.
    pub fn into_entropy(self) -> Entropy {
        self.0
    }

    /// The ten word-list indices (0..2048), e.g. for a UI that renders words itself.
    pub fn word_indices(&self) -> Zeroizing<[u16; NUM_WORDS]> {
        self.0.indices()
    }

    /// The ten words, for showing to the person who must type them into the app.
    /// Named `expose_` because the result *is* the secret.
    pub fn expose_words(&self) -> [&'static str; NUM_WORDS] {
        let list = word_list();
        let idx = self.0.indices();
        core::array::from_fn(|i| list[usize::from(idx[i] & 0x7ff)])
    }

    /// The phrase as one string with single spaces (the form Go apps and lnc-web accept),
    /// zeroized when dropped.
    pub fn to_phrase_string(&self) -> Zeroizing<String> {
        // 10 words of at most 8 letters + 9 spaces: never reallocates, so no stray copies.
        let mut s = Zeroizing::new(String::with_capacity(NUM_WORDS * (MAX_WORD_LEN + 1)));
        for (i, w) in self.expose_words().iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(w);
        }
        s
    }
}

impl core::str::FromStr for PairingPhrase {
    type Err = PhraseError;

    /// Same as [`PairingPhrase::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for PairingPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingPhrase(<redacted>)")
    }
}

/// Case-insensitive (ASCII) exact lookup. The list is sorted, so a binary search suffices.
fn lookup(word: &str) -> Option<u16> {
    if word.len() > MAX_WORD_LEN {
        return None;
    }
    let w = word.as_bytes();
    word_list()
        .binary_search_by(|cand| cand.bytes().cmp(w.iter().map(|b| b.to_ascii_lowercase())))
        .ok()
        .and_then(|i| u16::try_from(i).ok())
}

/// Up to [`MAX_SUGGESTIONS`] list words within [`MAX_SUGGESTION_DISTANCE`] edits of `word`
/// (case-insensitive; an adjacent transposition counts as one edit), closest first.
fn suggestions(word: &str) -> Vec<&'static str> {
    // Work on lower-cased chars in a fixed buffer: a word longer than 8 + 2 chars cannot be
    // within 2 edits of any list word, so huge input costs nothing.
    let mut buf = Zeroizing::new(['\0'; MAX_WORD_LEN + MAX_SUGGESTION_DISTANCE]);
    let mut n = 0usize;
    for c in word.chars() {
        match buf.get_mut(n) {
            Some(slot) => *slot = c.to_ascii_lowercase(),
            None => return Vec::new(),
        }
        n += 1;
    }
    let typed = buf.get(..n).unwrap_or(&[]);
    let mut hits: Vec<(usize, &'static str)> = word_list()
        .iter()
        .filter_map(|cand| {
            edit_distance_within(typed, cand.as_bytes(), MAX_SUGGESTION_DISTANCE)
                .map(|d| (d, *cand))
        })
        .collect();
    // Stable sort: equal distances keep list (alphabetical) order.
    hits.sort_by_key(|&(d, _)| d);
    hits.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, w)| w)
        .collect()
}

/// Optimal-string-alignment distance between `a` (chars) and `b` (ASCII list word), or
/// `None` if it exceeds `max`. Both are at most 10 long, so fixed-size rows suffice.
fn edit_distance_within(a: &[char], b: &[u8], max: usize) -> Option<usize> {
    const W: usize = MAX_WORD_LEN + MAX_SUGGESTION_DISTANCE + 1;
    if a.len().abs_diff(b.len()) > max || a.len() >= W || b.len() >= W {
        return None;
    }
    // d[i][j] = distance between a[..i] and b[..j].
    let mut d = [[0usize; W]; W];
    for (i, row) in d.iter_mut().enumerate().take(a.len() + 1) {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let ca = a[i - 1];
            let cb = char::from(b[j - 1]);
            let cost = usize::from(ca != cb);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && ca == char::from(b[j - 2]) && a[i - 2] == cb {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    let dist = d[a.len()][b.len()];
    (dist <= max).then_some(dist)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn cases() -> Vec<serde_json::Value> {
        let v: serde_json::Value =
            serde_json::from_str(&crate::test_vectors::read("pairing_phrase.json")).unwrap();
        let cases = v["cases"].as_array().unwrap().clone();
        assert_eq!(cases.len(), 5);
        cases
    }

    fn hex14(s: &str) -> [u8; ENTROPY_LEN] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn word_list_is_the_aezeed_list() {
        let list = word_list();
        assert_eq!(list.len(), 2048);
        assert_eq!(list[0], "abandon");
        assert_eq!(list[2047], "zoo");
        assert!(
            list.windows(2).all(|w| w[0] < w[1]),
            "sorted, for binary search"
        );
        assert_eq!(list.iter().map(|w| w.len()).max(), Some(MAX_WORD_LEN));
        assert!(
            list.iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn vectors_words_indices_entropy() {
        for c in cases() {
            let words: Vec<&str> = c["words"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap())
                .collect();
            let indices: Vec<u16> = c["word_indices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| u16::try_from(i.as_u64().unwrap()).unwrap())
                .collect();
            let entropy = hex14(c["entropy"].as_str().unwrap());

            // Input side: raw entropy (normalised) or the words.
            if let Some(raw) = c.get("input_entropy") {
                let e = Entropy::from_raw_normalizing(&hex14(raw.as_str().unwrap()));
                assert_eq!(e.as_bytes(), &entropy, "{}", c["description"]);
                let p = PairingPhrase::from_entropy(e);
                assert_eq!(p.expose_words().to_vec(), words);
            }
            let p = PairingPhrase::parse(c["phrase"].as_str().unwrap()).unwrap();
            assert_eq!(p.entropy().as_bytes(), &entropy, "{}", c["description"]);
            assert_eq!(p.word_indices().to_vec(), indices);
            assert_eq!(p.expose_words().to_vec(), words);
            assert_eq!(p.to_phrase_string().as_str(), c["phrase"].as_str().unwrap());
            assert_eq!(PairingPhrase::from_words(words.iter().copied()).unwrap(), p);
            let via_from_str: PairingPhrase = c["phrase"].as_str().unwrap().parse().unwrap();
            assert_eq!(via_from_str, p);
            // Stored canonical entropy is accepted as is.
            assert_eq!(Entropy::from_bytes(&entropy).unwrap().as_bytes(), &entropy);
        }
    }

    #[test]
    fn from_bytes_is_strict() {
        assert_eq!(
            Entropy::from_bytes(&[0u8; 13]),
            Err(PhraseError::WrongEntropyLength(13))
        );
        assert_eq!(
            Entropy::from_bytes(&[0u8; 15]),
            Err(PhraseError::WrongEntropyLength(15))
        );
        let mut b = [0u8; 14];
        for pad in 1..=3u8 {
            b[13] = pad;
            assert_eq!(
                Entropy::from_bytes(&b),
                Err(PhraseError::NonCanonicalEntropy)
            );
        }
        b[13] = 0b100;
        assert!(Entropy::from_bytes(&b).is_ok());
    }

    #[test]
    fn parse_accepts_mixed_case_and_any_whitespace() {
        let want =
            PairingPhrase::parse("void clay usual ahead liar shaft theory marble visual hockey")
                .unwrap();
        for s in [
            "VOID Clay usual aHead liar shaft theory marble visual HOCKEY",
            "  void\tclay\n usual   ahead\r\nliar shaft theory marble visual hockey \n",
            "void\u{3000}clay\u{a0}usual ahead liar shaft theory marble visual hockey",
        ] {
            assert_eq!(PairingPhrase::parse(s).unwrap(), want, "{s:?}");
        }
    }

    #[test]
    fn parse_wrong_word_count() {
        for (s, n) in [
            ("", 0),
            ("   \n\t ", 0),
            ("zoo", 1),
            ("zoo zoo zoo zoo zoo zoo zoo zoo zoo", 9),
            ("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo", 11),
            // Count is checked before words: unknown words in a 9-word phrase still say 9.
            ("zoo zoo zoo zoo zoo zoo zoo zoo xyzzy", 9),
        ] {
            assert_eq!(
                PairingPhrase::parse(s),
                Err(PhraseError::WrongWordCount {
                    expected: 10,
                    found: n
                }),
                "{s:?}"
            );
        }
        assert_eq!(
            PairingPhrase::from_words(["zoo"; 11]),
            Err(PhraseError::WrongWordCount {
                expected: 10,
                found: 11
            })
        );
    }

    #[test]
    fn parse_unknown_word_with_suggestions() {
        // "clai" is one edit from claim, clap, claw and clay: the first three in list order.
        let err =
            PairingPhrase::parse("void clai usual ahead liar shaft theory marble visual hockey")
                .unwrap_err();
        let PhraseError::UnknownWord {
            position,
            suggestions,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*position, 2);
        assert_eq!(suggestions, &["claim", "clap", "claw"]);
        // Never echo the typed word; the suggestions are redacted in Debug.
        assert!(!err.to_string().contains("clai"));
        assert!(!format!("{err:?}").contains("clap"));
        assert_eq!(
            err.hint().as_deref(),
            Some(r#"did you mean "claim", "clap" or "claw"?"#)
        );

        // Transposition counts as one edit; closest first, then list order.
        let err = PairingPhrase::parse("zoo zoo zoo zoo zoo zoo zoo zoo zoo hcokey").unwrap_err();
        let PhraseError::UnknownWord {
            position,
            suggestions,
        } = err
        else {
            panic!()
        };
        assert_eq!(position, 10);
        assert_eq!(suggestions.first(), Some(&"hockey"));
        // Only the first unknown word is reported.
        let err = PairingPhrase::parse("zoo zoo zooo zoo zoo zoo zoo zzz zoo zoo").unwrap_err();
        let PhraseError::UnknownWord {
            position,
            suggestions,
        } = err
        else {
            panic!()
        };
        assert_eq!(position, 3);
        assert_eq!(suggestions.first(), Some(&"zoo"));
        assert!(suggestions.len() <= 3);
        // Nothing close, non-ASCII, or absurdly long: no suggestions, still an error.
        for w in [
            "qqqqqqqq",
            "zöo",
            "abandonabandonabandon",
            "\u{0}\u{1}\u{2}\u{3}\u{4}",
        ] {
            let s = format!("zoo zoo zoo zoo {w} zoo zoo zoo zoo zoo");
            let err = PairingPhrase::parse(&s).unwrap_err();
            let PhraseError::UnknownWord {
                position,
                suggestions,
            } = err
            else {
                panic!()
            };
            assert_eq!(position, 5);
            if w != "zöo" {
                assert!(suggestions.is_empty(), "{w}: {suggestions:?}");
            }
        }
    }

    #[test]
    fn suggestions_are_sorted_by_distance_and_capped() {
        // "abanon": abandon (1 insertion) first.
        let s = suggestions("abanon");
        assert_eq!(s.first(), Some(&"abandon"));
        // A 3-letter word has many neighbours; capped at 3, all within 2 edits.
        let s = suggestions("cat");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], "cat");
        let typed: Vec<char> = "cat".chars().collect();
        for w in &s {
            assert!(edit_distance_within(&typed, w.as_bytes(), 2).is_some());
        }
    }

    #[test]
    fn edit_distance_basics() {
        let d = |a: &str, b: &str| {
            let a: Vec<char> = a.chars().collect();
            edit_distance_within(&a, b.as_bytes(), 2)
        };
        assert_eq!(d("zoo", "zoo"), Some(0));
        assert_eq!(d("zo", "zoo"), Some(1));
        assert_eq!(d("ozo", "zoo"), Some(1));
        assert_eq!(d("abc", "xyz"), None);
        assert_eq!(d("", "zoo"), None);
        assert_eq!(d("", "ox"), Some(2));
    }

    #[test]
    fn generate_is_canonical_and_seeded() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..200 {
            let e = Entropy::generate(&mut rng);
            assert_eq!(e.as_bytes()[13] & PAD_MASK, 0);
            let p = PairingPhrase::from_entropy(e.clone());
            let back = PairingPhrase::parse(&p.to_phrase_string()).unwrap();
            assert_eq!(back.entropy(), &e);
        }
        let a = PairingPhrase::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let b = PairingPhrase::generate(&mut ChaCha20Rng::seed_from_u64(1));
        let c = PairingPhrase::generate(&mut ChaCha20Rng::seed_from_u64(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn debug_redacts() {
        let p = PairingPhrase::parse("zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo").unwrap();
        assert_eq!(format!("{p:?}"), "PairingPhrase(<redacted>)");
        assert_eq!(format!("{:?}", p.entropy()), "Entropy(<redacted>)");
    }

    proptest! {
        #[test]
        fn entropy_words_entropy(raw in any::<[u8; ENTROPY_LEN]>()) {
            let e = Entropy::from_raw_normalizing(&raw);
            let p = PairingPhrase::from_entropy(e.clone());
            let words = p.expose_words();
            prop_assert_eq!(PairingPhrase::from_words(words).unwrap().into_entropy(), e.clone());
            prop_assert_eq!(PairingPhrase::parse(&p.to_phrase_string()).unwrap().into_entropy(), e.clone());
            // Indices agree with the bit layout.
            let idx = p.word_indices();
            prop_assert_eq!(Entropy::from_indices(&idx), e);
        }

        #[test]
        fn indices_words_indices(idx in any::<[u16; NUM_WORDS]>()) {
            let idx = idx.map(|i| i & 0x7ff);
            let e = Entropy::from_indices(&idx);
            prop_assert_eq!(e.as_bytes()[13] & PAD_MASK, 0);
            prop_assert_eq!(*e.indices(), idx);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = PairingPhrase::parse(&s);
        }

        #[test]
        fn parse_near_miss_never_panics(
            words in proptest::collection::vec("[a-zA-Z\u{e0}-\u{ff}]{0,12}", 0..14),
            seps in proptest::collection::vec("[ \t\n\u{a0}]{1,3}", 14),
        ) {
            let mut s = String::new();
            for (w, sep) in words.iter().zip(&seps) {
                s.push_str(w);
                s.push_str(sep);
            }
            if let Err(PhraseError::UnknownWord { position, suggestions }) = PairingPhrase::parse(&s) {
                prop_assert!((1..=10).contains(&position));
                prop_assert!(suggestions.len() <= 3);
            }
        }
    }
}
