#![no_main]
//! Pairing-phrase parsing on arbitrary text (what a user or a pasted QR payload can supply):
//! never panics, and every accepted phrase round-trips through its canonical string.
use libfuzzer_sys::fuzz_target;
use lnc_core::pairing::{PairingPhrase, PhraseError};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match PairingPhrase::parse(s) {
        Ok(p) => {
            let canonical = p.to_phrase_string();
            let again = PairingPhrase::parse(&canonical).expect("canonical phrase parses");
            assert_eq!(again, p);
            assert_eq!(p.entropy().as_bytes()[13] & 0b11, 0);
        }
        Err(PhraseError::UnknownWord {
            position,
            suggestions,
        }) => {
            assert!((1..=10).contains(&position));
            assert!(suggestions.len() <= 3);
        }
        Err(PhraseError::WrongWordCount { found, .. }) => assert_ne!(found, 10),
        Err(e) => panic!("unexpected error from parse: {e}"),
    }
    // The word-by-word entry point agrees with parse on the same words.
    let by_words = PairingPhrase::from_words(s.split_whitespace());
    assert_eq!(by_words, PairingPhrase::parse(s));
});
