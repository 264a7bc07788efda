//! Secrets (the Cloud API's access token, app secret and verify token; the SMS providers' keys;
//! each FHIR feed's token or client secret):
//! read from the environment or from systemd credentials, never from `reminders.toml`, never logged.

use std::path::PathBuf;

use secrecy::SecretString;

/// The access token: `$WHATSAPP_ACCESS_TOKEN`, else the file `whatsapp-token` in
/// `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`).
pub const ACCESS_TOKEN: Secret = Secret {
    env: "WHATSAPP_ACCESS_TOKEN",
    credential: "whatsapp-token",
};

/// The app secret that signs webhooks: `$WHATSAPP_APP_SECRET`, else `whatsapp-app-secret`.
pub const APP_SECRET: Secret = Secret {
    env: "WHATSAPP_APP_SECRET",
    credential: "whatsapp-app-secret",
};

/// The token Meta echoes in the subscription handshake: `$WHATSAPP_VERIFY_TOKEN`, else
/// `whatsapp-verify-token`.
pub const VERIFY_TOKEN: Secret = Secret {
    env: "WHATSAPP_VERIFY_TOKEN",
    credential: "whatsapp-verify-token",
};

/// Twilio's Auth Token (Basic auth for sends; the key of `X-Twilio-Signature`):
/// `$TWILIO_AUTH_TOKEN`, else `twilio-auth-token`.
pub const TWILIO_AUTH_TOKEN: Secret = Secret {
    env: "TWILIO_AUTH_TOKEN",
    credential: "twilio-auth-token",
};

/// MSG91's auth key (the `authkey` header): `$MSG91_AUTH_KEY`, else `msg91-auth-key`.
pub const MSG91_AUTH_KEY: Secret = Secret {
    env: "MSG91_AUTH_KEY",
    credential: "msg91-auth-key",
};

/// The token MSG91's delivery-report webhook URL carries (`?token=`), since MSG91 signs
/// nothing: `$MSG91_WEBHOOK_TOKEN`, else `msg91-webhook-token`.
pub const MSG91_WEBHOOK_TOKEN: Secret = Secret {
    env: "MSG91_WEBHOOK_TOKEN",
    credential: "msg91-webhook-token",
};

/// Where one secret may come from.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    /// Environment variable.
    pub env: &'static str,
    /// File name inside `$CREDENTIALS_DIRECTORY`.
    pub credential: &'static str,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither source has it.
    #[error("{} is not set, and there is no credential file {credential} in $CREDENTIALS_DIRECTORY; export {} or add LoadCredential={credential}:/path to the service", secret.env, secret.env, credential = secret.credential)]
    Missing {
        /// The secret.
        secret: Secret,
    },
    /// A feed's or a number's secret is in neither source.
    #[error(
        "{env} is not set, and there is no credential file {credential} in $CREDENTIALS_DIRECTORY; export {env} or add LoadCredential={credential}:/path to the service"
    )]
    NamedMissing {
        /// The environment variable.
        env: String,
        /// The credential's file name.
        credential: String,
    },
    /// A number with `own_token = true` has no token.
    #[error("[whatsapp.numbers.{number}] has own_token = true, but {source}")]
    OwnToken {
        /// The number's name.
        number: String,
        /// Why its token could not be read.
        source: Box<SecretError>,
    },
    /// The credential file exists but cannot be read.
    #[error("cannot read credential {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

impl Secret {
    /// Reads the secret; surrounding whitespace (a trailing newline in a file) is dropped.
    pub fn load(self) -> Result<SecretString, SecretError> {
        self.load_from(|k| std::env::var(k).ok())
    }

    /// As [`Secret::load`], with the environment given (for tests).
    pub fn load_from(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SecretString, SecretError> {
        read(self.env, self.credential, env)?.ok_or(SecretError::Missing { secret: self })
    }
}

/// Which of a FHIR feed's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedSecretKind {
    /// The bearer token (`auth = "bearer"`).
    Token,
    /// The OAuth2 client secret (`auth = "client_credentials"`).
    ClientSecret,
}

/// Where a secret named after a config table may come from, since a config may have several:
/// a feed's (`[feeds.main-ehr]` → `$REMINDERD_FEED_MAIN_EHR_TOKEN` or credential
/// `feed-main-ehr-token`) or a WhatsApp number's own token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSecret {
    /// Environment variable.
    pub env: String,
    /// File name inside `$CREDENTIALS_DIRECTORY`.
    pub credential: String,
}

/// The secret `which` of feed `feed`.
pub fn feed_secret(feed: &str, which: FeedSecretKind) -> NamedSecret {
    let upper = env_name(feed);
    let (env, file) = match which {
        FeedSecretKind::Token => ("TOKEN", "token"),
        FeedSecretKind::ClientSecret => ("CLIENT_SECRET", "client-secret"),
    };
    NamedSecret {
        env: format!("REMINDERD_FEED_{upper}_{env}"),
        credential: format!("feed-{feed}-{file}"),
    }
}

/// A config table's name as it appears in an environment variable (`brand-b` → `BRAND_B`).
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// The access token of `[whatsapp.numbers.NAME]` with `own_token = true`:
/// `$REMINDERD_WHATSAPP_TOKEN_<NAME>` or credential `whatsapp-token-<name>`.
pub fn number_token(name: &str) -> NamedSecret {
    NamedSecret {
        env: format!("REMINDERD_WHATSAPP_TOKEN_{}", env_name(name)),
        credential: format!("whatsapp-token-{name}"),
    }
}

/// Number `n`'s own token when it has one (`own_token = true`), from the environment or the
/// credentials directory; `None`: it sends with the main token.
pub fn own_token(n: &crate::config::Number) -> Result<Option<SecretString>, SecretError> {
    if !n.own_token {
        return Ok(None);
    }
    number_token(&n.name)
        .load_from(|k| std::env::var(k).ok())
        .map(Some)
        .map_err(|e| SecretError::OwnToken {
            number: n.name.clone(),
            source: Box::new(e),
        })
}

/// The PostgreSQL password (`database.url`): `$REMINDERD_DATABASE_PASSWORD` or the credential
/// `database-password`; `None` when neither has it (a server that trusts the connection).
pub fn database_password() -> Result<Option<SecretString>, SecretError> {
    read("REMINDERD_DATABASE_PASSWORD", "database-password", |k| {
        std::env::var(k).ok()
    })
}

/// The own tokens of the config's numbers that have one, by phone number id: what fetches the
/// files patients send to such a number.
pub fn number_tokens(
    config: &crate::config::Config,
) -> Result<std::collections::BTreeMap<String, SecretString>, SecretError> {
    let mut out = std::collections::BTreeMap::new();
    for n in config.whatsapp.iter().flat_map(|w| w.numbers.values()) {
        if let Some(token) = own_token(n)? {
            out.insert(n.phone_number_id.clone(), token);
        }
    }
    Ok(out)
}

impl NamedSecret {
    /// Reads the secret, as [`Secret::load_from`] does.
    pub fn load_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SecretString, SecretError> {
        read(&self.env, &self.credential, env)?.ok_or_else(|| SecretError::NamedMissing {
            env: self.env.clone(),
            credential: self.credential.clone(),
        })
    }
}

/// The environment first, then the credentials directory; `None`: in neither.
fn read(
    name: &str,
    credential: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, SecretError> {
    if let Some(v) = env(name).filter(|v| !v.trim().is_empty()) {
        return Ok(Some(SecretString::from(v.trim().to_string())));
    }
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(credential);
        match std::fs::read_to_string(&path) {
            Ok(v) if !v.trim().is_empty() => {
                return Ok(Some(SecretString::from(v.trim().to_string())));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SecretError::Unreadable { path, source }),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn environment_first_then_credentials_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("whatsapp-token"), "from-file\n").expect("write");
        let d = dir.path().to_string_lossy().into_owned();
        let both = |k: &str| match k {
            "WHATSAPP_ACCESS_TOKEN" => Some("from-env".to_string()),
            "CREDENTIALS_DIRECTORY" => Some(d.clone()),
            _ => None,
        };
        assert_eq!(
            ACCESS_TOKEN.load_from(both).expect("env").expose_secret(),
            "from-env"
        );
        let file_only = |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| d.clone());
        assert_eq!(
            ACCESS_TOKEN
                .load_from(file_only)
                .expect("file")
                .expose_secret(),
            "from-file"
        );
        let err = ACCESS_TOKEN.load_from(|_| None).expect_err("missing");
        assert!(
            err.to_string().contains("WHATSAPP_ACCESS_TOKEN is not set"),
            "{err}"
        );
    }

    #[test]
    fn a_feeds_secret_is_named_after_the_feed() {
        let s = feed_secret("main-ehr", FeedSecretKind::ClientSecret);
        assert_eq!(s.env, "REMINDERD_FEED_MAIN_EHR_CLIENT_SECRET");
        assert_eq!(s.credential, "feed-main-ehr-client-secret");
        let t = feed_secret("ehr", FeedSecretKind::Token);
        let got = t
            .load_from(|k| (k == "REMINDERD_FEED_EHR_TOKEN").then(|| "tok\n".to_string()))
            .expect("env");
        assert_eq!(got.expose_secret(), "tok");
        let err = t.load_from(|_| None).expect_err("missing");
        assert!(
            err.to_string()
                .contains("REMINDERD_FEED_EHR_TOKEN is not set")
                && err.to_string().contains("feed-ehr-token"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = ACCESS_TOKEN
            .load_from(|k| (k == "WHATSAPP_ACCESS_TOKEN").then(|| "EAAJB-very-secret".to_string()))
            .expect("env");
        assert!(!format!("{s:?}").contains("very-secret"));
    }
}
