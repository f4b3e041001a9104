//! Access tokens: short-lived HS256 JWTs.
//!
//! jsonwebtoken's defaults are too lax for us (see SECURITY-TESTS D8/D9), so
//! validation is explicit: one algorithm; `iss`, `aud`, `exp`, `iat`, `sub`
//! required; leeway from settings (≤ 30 s); header `typ` must be `at+jwt`
//! and claim `typ` must be `access`; the key is chosen by `kid` from a fixed
//! ring, never fetched.

use std::collections::HashMap;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tenfold_config::AuthSettings;
use tenfold_domain::{OrgId, UserId};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const ACCESS_TYP: &str = "access";
pub const HEADER_TYP: &str = "at+jwt";
/// Longer than any token we issue; anything bigger is refused unparsed.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub org: Uuid,
    /// The sign-in (refresh-token family) this token belongs to.
    pub sid: Uuid,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

pub struct VerifiedAccess {
    pub user: UserId,
    pub org: OrgId,
    pub session: Uuid,
    pub issued_at: i64,
}

struct SigningKey {
    kid: String,
    key: EncodingKey,
}

pub struct AccessTokens {
    signing: SigningKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
}

impl AccessTokens {
    pub fn new(settings: &AuthSettings, secret: &[u8]) -> Self {
        let mut verifying = HashMap::new();
        verifying.insert(settings.jwt_kid.clone(), DecodingKey::from_secret(secret));
        for retired in &settings.retired_keys {
            verifying.insert(retired.kid.clone(), DecodingKey::from_secret(retired.secret.expose_secret().as_bytes()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = settings.leeway_seconds.min(30);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        Self {
            signing: SigningKey { kid: settings.jwt_kid.clone(), key: EncodingKey::from_secret(secret) },
            verifying,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_seconds: settings.access_token_ttl_seconds as i64,
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    pub fn issue(&self, user: UserId, org: OrgId, session: Uuid) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.0,
            org: org.0,
            sid: session,
            typ: ACCESS_TYP.into(),
            iat: now,
            exp: now + self.ttl_seconds,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing.kid.clone());
        header.typ = Some(HEADER_TYP.into());
        encode(&header, &claims, &self.signing.key).map_err(AppError::internal)
    }

    /// Verifies an access token. Every failure gives the same message: the
    /// client learns only that the token is not valid.
    pub fn verify(&self, token: &str) -> AppResult<VerifiedAccess> {
        let invalid = || AppError::unauthenticated("the access token is not valid or has expired; sign in again or refresh the session");
        if token.len() > MAX_TOKEN_LEN
            || token.split('.').count() != 3
            || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(invalid());
        }
        let header = decode_header(token).map_err(|_| invalid())?;
        if header.typ.as_deref() != Some(HEADER_TYP) {
            return Err(invalid());
        }
        let key = header.kid.as_deref().and_then(|kid| self.verifying.get(kid)).ok_or_else(invalid)?;
        let data = decode::<AccessClaims>(token, key, &self.validation).map_err(|_| invalid())?;
        let claims = data.claims;
        if claims.typ != ACCESS_TYP || claims.iat > Utc::now().timestamp() + self.validation.leeway as i64 {
            return Err(invalid());
        }
        Ok(VerifiedAccess { user: UserId(claims.sub), org: OrgId(claims.org), session: claims.sid, issued_at: claims.iat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenfold_config::{RetiredKey, SecretString};

    fn settings() -> AuthSettings {
        AuthSettings::default()
    }

    #[test]
    fn round_trip_and_sign_verify_work_with_the_crypto_backend() {
        let tokens = AccessTokens::new(&settings(), &[7u8; 32]);
        let (u, o, s) = (UserId::new(), OrgId::new(), Uuid::new_v4());
        let t = tokens.issue(u, o, s).unwrap();
        let v = tokens.verify(&t).unwrap();
        assert_eq!((v.user, v.org, v.session), (u, o, s));
    }

    #[test]
    fn wrong_key_and_unknown_kid_are_refused() {
        let a = AccessTokens::new(&settings(), &[7u8; 32]);
        let b = AccessTokens::new(&settings(), &[8u8; 32]);
        let t = a.issue(UserId::new(), OrgId::new(), Uuid::new_v4()).unwrap();
        assert!(b.verify(&t).is_err());
        let mut other = settings();
        other.jwt_kid = "k9".into();
        let c = AccessTokens::new(&other, &[7u8; 32]);
        assert!(c.verify(&t).is_err(), "kid k1 is unknown to a ring holding only k9");
    }

    #[test]
    fn retired_keys_still_verify_during_rotation() {
        let old = AccessTokens::new(&settings(), &[7u8; 32]);
        let t = old.issue(UserId::new(), OrgId::new(), Uuid::new_v4()).unwrap();
        let mut rotated = settings();
        rotated.jwt_kid = "k2".into();
        rotated.retired_keys = vec![RetiredKey { kid: "k1".into(), secret: SecretString::from(String::from_utf8(vec![7u8; 32]).unwrap()) }];
        let new = AccessTokens::new(&rotated, &[9u8; 32]);
        assert!(new.verify(&t).is_ok());
        assert!(new.verify(&new.issue(UserId::new(), OrgId::new(), Uuid::new_v4()).unwrap()).is_ok());
    }
}
