#![no_main]
//! A whole profile file's life: credentials (any the binary codec accepts) sealed under a
//! fuzzer-chosen password, written as the JSON file, read back and opened. What was sealed
//! must come back exactly; a different password must be refused as wrong, never decoded
//! into other credentials or a panic. `credentials_decode` fuzzes the two decoders on
//! their own; this target checks they compose (the AAD binds the public header, the
//! envelope carries every byte the codec produced). The KDF cost is the minimum so
//! executions stay fast.
use libfuzzer_sys::fuzz_target;
use lnc_client::{Credentials, CredentialsError, EncryptedCredentials};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((&pw_len, rest)) = data.split_first() else {
        return;
    };
    let pw_len = usize::from(pw_len % 32).min(rest.len());
    let (password, encoded) = rest.split_at(pw_len);
    let Ok(creds) = Credentials::from_bytes(encoded) else {
        return;
    };
    let mut rng = ChaCha20Rng::seed_from_u64(data.len() as u64);
    let sealed = EncryptedCredentials::seal_with(&creds, password, 1, &mut rng);
    let file = sealed.to_json();
    let read = EncryptedCredentials::from_json(file.as_bytes())
        .expect("a sealed profile's own JSON must parse");
    assert_eq!(read, sealed);
    let opened = read.open(password).expect("the right password must open it");
    assert_eq!(opened.to_bytes(), creds.to_bytes());
    let mut wrong = password.to_vec();
    wrong.push(b'x');
    assert!(matches!(
        read.open(&wrong),
        Err(CredentialsError::WrongPassword)
    ));
});
