//! Passwords and tokens for staff sign-in: argon2id hashes, random session and CSRF tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Block};
use rand::Rng;
use sha2::{Digest, Sha256};

/// Shortest password `reminderd user add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Why a password was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Too short to resist guessing.
    #[error(
        "the password is {0} characters long; use at least {MIN_PASSWORD_CHARS} (a few unrelated words are easy to remember)"
    )]
    TooShort(usize),
    /// Hashing failed (should not happen with the default parameters).
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

/// An argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(chars));
    }
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Most memory a stored hash may ask of a check (argon2's default is 19 MiB): a larger one
/// would be a corrupt or hostile row, and never matches.
const MAX_HASH_BLOCKS: usize = 256 * 1024;

/// Whether `password` matches a stored PHC string (a malformed one never matches).
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_in(password, phc, &mut Vec::new())
}

/// [`verify_password`] in `memory`, which is grown to the hash's size and kept: argon2 needs
/// 19 MiB a check, and reusing a few buffers keeps the process's memory bounded however many
/// sign-ins arrive (allocator arenas keep freed blocks resident otherwise).
pub fn verify_password_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_HASH_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && crate::server::constant_time_eq(&out, expected.as_bytes())
}

/// A hash to verify against when the name is unknown, so that a wrong name takes as long
/// as a wrong password and sign-in does not reveal which names exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").unwrap_or_default())
}

/// 32 random bytes as 64 hex digits: session cookies, CSRF tokens, preview tokens.
pub fn new_token() -> String {
    let mut rng = rand::rng();
    format!("{:032x}{:032x}", rng.random::<u128>(), rng.random::<u128>())
}

/// Whether `text` is a token [`new_token`] could have made: the check a form's one-time nonce
/// (Remind now, a conversation's answer, a document) passes before it names a stored row.
pub fn is_token(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What the database keeps of a session token.
pub fn token_hash(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    crate::server::constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_hex_and_nothing_else_passes_for_one() {
        let (a, b) = (new_token(), new_token());
        assert!(is_token(&a) && is_token(&b) && a != b);
        for bad in [
            "",
            "XYZ",
            &a[..63],
            "0123456789ABCDEF".repeat(4).as_str(),
            format!("press:{}", &a[..58]).as_str(),
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("correct horse batterY", &a));
        assert!(!verify_password("anything", "not a hash"));
        // One buffer serves checks one after another, and a bigger buffer than needed.
        let mut memory = Vec::new();
        assert!(verify_password_in("correct horse battery", &a, &mut memory));
        assert!(!verify_password_in(
            "correct horse batterY",
            &b,
            &mut memory
        ));
        assert!(verify_password_in("correct horse battery", &b, &mut memory));
        memory.resize(memory.len() + 10, Block::default());
        assert!(verify_password_in("correct horse battery", &a, &mut memory));
        // A hash asking for more memory than any we make never matches, and takes none.
        let before = memory.len();
        let greedy = a.replace("m=19456", "m=4194304");
        assert!(!verify_password_in(
            "correct horse battery",
            &greedy,
            &mut memory
        ));
        assert_eq!(memory.len(), before);
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort(5)));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        assert_eq!(token_hash(&t).len(), 64);
        assert_ne!(token_hash(&t), t);
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &new_token()));
        assert!(!same_token(&t, ""));
    }
}
