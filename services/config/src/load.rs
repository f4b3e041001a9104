use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::ExposeSecret;

use crate::settings::{Mode, Settings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the settings: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("refusing to start: {0}")]
    Unsafe(String),
}

/// Loads settings from defaults, then `file` if given, then the environment.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::Unsafe(format!("the settings file {} does not exist", path.display())));
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Env::prefixed("TENFOLD_").split("__"));
    let settings: Settings = figment.extract().map_err(Box::new)?;
    settings.validate()?;
    Ok(settings)
}

impl Settings {
    /// Rejects settings that would be unsafe in production. Dev and test modes
    /// are allowed short secrets only because a fresh one is generated for them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let secret_len = self.auth.jwt_secret.expose_secret().len();
        if self.mode == Mode::Production {
            if secret_len < 32 {
                return Err(ConfigError::Unsafe(format!(
                    "auth.jwt_secret (TENFOLD_AUTH__JWT_SECRET) is {secret_len} bytes; production needs at least 32 random bytes"
                )));
            }
            if self.graphql.introspection {
                return Err(ConfigError::Unsafe(
                    "graphql.introspection is on; turn it off in production (TENFOLD_GRAPHQL__INTROSPECTION=false)".into(),
                ));
            }
            if self.graphql.graphiql {
                return Err(ConfigError::Unsafe("graphql.graphiql is on; GraphiQL is for development only".into()));
            }
            if self.metrics.port.is_none() && self.metrics.token.expose_secret().is_empty() {
                return Err(ConfigError::Unsafe(
                    "/metrics would be public on the API listener; give it its own port (TENFOLD_METRICS__PORT) or a bearer token (TENFOLD_METRICS__TOKEN)".into(),
                ));
            }
            if self.webhooks.allow_private_networks || self.webhooks.allow_http {
                return Err(ConfigError::Unsafe(
                    "webhooks.allow_private_networks / allow_http are on; production webhooks go to public HTTPS endpoints only".into(),
                ));
            }
        }
        for key in &self.auth.retired_keys {
            if key.secret.expose_secret().len() < 32 {
                return Err(ConfigError::Unsafe(format!("the retired JWT key {:?} is shorter than 32 bytes", key.kid)));
            }
            if key.kid == self.auth.jwt_kid {
                return Err(ConfigError::Unsafe(format!("the retired JWT key id {:?} equals the active key id", key.kid)));
            }
        }
        if self.auth.leeway_seconds > 30 {
            return Err(ConfigError::Unsafe("auth.leeway_seconds must be at most 30".into()));
        }
        if self.auth.access_token_ttl_seconds == 0 || self.auth.access_token_ttl_seconds > 3600 {
            return Err(ConfigError::Unsafe("auth.access_token_ttl_seconds must be between 1 and 3600".into()));
        }
        if self.graphql.max_page_size == 0 || self.graphql.max_page_size > 100 {
            return Err(ConfigError::Unsafe("graphql.max_page_size must be between 1 and 100".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretString;

    fn production() -> Settings {
        let mut s = Settings { mode: Mode::Production, ..Settings::default() };
        s.graphql.introspection = false;
        s.graphql.graphiql = false;
        s.auth.jwt_secret = SecretString::from("x".repeat(32));
        s.metrics.port = Some(9090);
        s
    }

    #[test]
    fn production_refuses_public_metrics() {
        let mut s = production();
        s.metrics.port = None;
        assert!(s.validate().unwrap_err().to_string().contains("TENFOLD_METRICS__PORT"));
        s.metrics.token = SecretString::from("scraper-token");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn production_refuses_short_secret() {
        let mut s = production();
        assert!(s.validate().is_ok());
        s.auth.jwt_secret = SecretString::from("x".repeat(31));
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("31 bytes"), "{err}");
    }

    #[test]
    fn production_refuses_introspection_and_graphiql() {
        let mut s = production();
        s.graphql.introspection = true;
        assert!(s.validate().unwrap_err().to_string().contains("introspection"));
        let mut s = production();
        s.graphql.graphiql = true;
        assert!(s.validate().unwrap_err().to_string().contains("GraphiQL"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut s = production();
        s.auth.jwt_secret = SecretString::from("super-secret-value-that-is-long-enough");
        s.database.url = SecretString::from("postgres://u:hunter2@db/x");
        let printed = format!("{s:?}");
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    #[expect(clippy::result_large_err, reason = "figment's Jail API fixes the error type")]
    fn layers_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("t.toml", "[server]\nport = 9000\n[graphql]\nmax_depth = 7\n")?;
            jail.set_env("TENFOLD_SERVER__PORT", "9100");
            let s = load(Some(Path::new("t.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.server.port, 9100, "environment wins over the file");
            assert_eq!(s.graphql.max_depth, 7, "file wins over defaults");
            Ok(())
        });
    }
}
