//! Random tokens, their hashes, and the API-key format.
//!
//! API keys follow GitHub's token format: a type prefix, random base62 and a
//! CRC32 checksum, so a scanner (or our own authenticator, before touching
//! the database) can tell a real key from a typo. Only a SHA-256 of each
//! secret is stored: the secrets are 190-bit random values, so a fast hash
//! is enough (a password hash would only slow every request).

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const API_KEY_PREFIX: &str = "tfk_";
/// Keys an organization issues to its own customers, for its endpoints.
pub const CUSTOMER_KEY_PREFIX: &str = "tfc_";
const LOOKUP_LEN: usize = 12;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + LOOKUP_LEN + SECRET_LEN + CHECKSUM_LEN;

pub fn random_base62(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

pub fn sha256_hex(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// A freshly minted API key. `secret` is the whole key, shown once.
pub struct MintedApiKey {
    pub secret: String,
    pub lookup_id: String,
    pub display_prefix: String,
    pub secret_hash: String,
}

pub fn mint_api_key() -> MintedApiKey {
    mint_key(API_KEY_PREFIX)
}

/// A key of the API-key format with another type prefix (`tfc_`).
pub fn mint_key(prefix: &str) -> MintedApiKey {
    let lookup_id = random_base62(LOOKUP_LEN);
    let secret_part = random_base62(SECRET_LEN);
    let body = format!("{prefix}{lookup_id}{secret_part}");
    let secret = format!("{body}{}", checksum(&body));
    MintedApiKey { display_prefix: format!("{prefix}{lookup_id}"), secret_hash: sha256_hex(&secret), lookup_id, secret }
}

/// The public lookup id of a well-formed key with a valid checksum; `None`
/// for anything else, decided without any database query.
pub fn parse_api_key(candidate: &str) -> Option<&str> {
    parse_key(API_KEY_PREFIX, candidate)
}

/// [`parse_api_key`] for keys of another type prefix.
pub fn parse_key<'a>(prefix: &str, candidate: &'a str) -> Option<&'a str> {
    if candidate.len() != API_KEY_LEN || !candidate.starts_with(prefix) {
        return None;
    }
    let rest = &candidate[prefix.len()..];
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (body, sum) = candidate.split_at(candidate.len() - CHECKSUM_LEN);
    if !constant_time_eq(&checksum(body), sum) {
        return None;
    }
    Some(&rest[..LOOKUP_LEN])
}

/// An opaque single-use token with a type prefix, e.g. `tfr_…` for refresh.
pub fn opaque_token(prefix: &str) -> String {
    format!("{prefix}{}", random_base62(43))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_checksums_catch_typos() {
        let key = mint_api_key();
        assert_eq!(key.secret.len(), API_KEY_LEN);
        assert_eq!(parse_api_key(&key.secret), Some(key.lookup_id.as_str()));
        assert!(key.secret.starts_with(&key.display_prefix));
        // Change one character of the random part: the checksum refuses it.
        let mut chars: Vec<char> = key.secret.chars().collect();
        let i = API_KEY_PREFIX.len() + LOOKUP_LEN + 3;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(parse_api_key(&typo), None);
        assert_eq!(parse_api_key("tfk_short"), None);
        assert_eq!(parse_api_key(&key.secret.replace("tfk_", "tfx_")), None);
    }

    #[test]
    fn random_strings_are_never_taken_for_keys() {
        // The false-positive rate of the checksum is 1 in 62^6; a random
        // string of the right shape must essentially never pass.
        let hits = (0..20_000)
            .filter(|_| parse_api_key(&format!("{API_KEY_PREFIX}{}", random_base62(API_KEY_LEN - API_KEY_PREFIX.len()))).is_some())
            .count();
        assert_eq!(hits, 0);
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
