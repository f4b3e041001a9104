//! Password hashing with argon2id (PHC strings, per-password salt).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tenfold_domain::Password;

use crate::error::{AppError, AppResult};

pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// Hash of a random password, verified when an email is unknown so that
    /// a failed sign-in takes the same time whether or not the account exists.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32) -> AppResult<Self> {
        let params = Params::new(memory_kib.max(8), iterations.max(1), 1, None)
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon2, dummy_hash: String::new() };
        hasher.dummy_hash = hasher.hash_str(&crate::secrets::random_base62(24))?;
        Ok(hasher)
    }

    pub fn hash(&self, password: &Password) -> AppResult<String> {
        self.hash_str(password.expose())
    }

    fn hash_str(&self, password: &str) -> AppResult<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))
    }

    /// Whether `password` matches `stored`; with `None`, burns the same time
    /// and answers false.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let hash = stored.unwrap_or(&self.dummy_hash);
        let ok = PasswordHash::new(hash).map(|parsed| self.argon2.verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false);
        ok && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = PasswordHasher::new(1024, 1).unwrap();
        let p = Password::parse("correct horse battery").unwrap();
        let stored = h.hash(&p).unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(h.verify("correct horse battery", Some(&stored)));
        assert!(!h.verify("wrong horse battery", Some(&stored)));
        assert!(!h.verify("correct horse battery", None));
    }
}
