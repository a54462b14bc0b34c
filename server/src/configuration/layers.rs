//! The layers of settings — the TOML file and the environment — and how one
//! key is looked up across them, remembering where each value came from so an
//! error can name it.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;

use super::jobs::{FileJobs, FileScheduler};
use super::passes::{FileGc, FileRetention};
use super::values::{invalid, non_empty, parse_bool, parse_bucket, parse_endpoint, parse_file};
use super::{ConfigError, OBJECTS_DIR_NAME, ObjectStoreSettings, S3Settings};
use crate::tls::{TlsError, TlsSettings};

/// The shape of the TOML file; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettings {
    pub(super) listen: Option<String>,
    pub(super) data_dir: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) log: Option<String>,
    pub(super) tls_cert: Option<String>,
    pub(super) tls_key: Option<String>,
    pub(super) s3: Option<FileS3Settings>,
    pub(super) rate_limits: Option<FileRateLimits>,
    pub(super) agents: Option<FileAgents>,
    pub(super) jobs: Option<FileJobs>,
    pub(super) scheduler: Option<FileScheduler>,
    pub(super) retention: Option<FileRetention>,
    pub(super) gc: Option<FileGc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAgents {
    pub(super) offline_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRateLimits {
    pub(super) agent_per_second: Option<u64>,
    pub(super) agent_burst: Option<u64>,
    pub(super) address_per_second: Option<u64>,
    pub(super) address_burst: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileS3Settings {
    pub(super) endpoint: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) region: Option<String>,
    pub(super) access_key: Option<String>,
    pub(super) secret_key: Option<String>,
    pub(super) path_style: Option<bool>,
}

/// A raw value and the name of the place it came from, for error messages.
pub(super) struct Sourced {
    pub(super) value: String,
    pub(super) setting: String,
}

/// Merges the layers for one key: the environment wins over the file.
pub(super) struct Layers<'a> {
    pub(super) file_name: String,
    pub(super) env: &'a HashMap<String, String>,
}

impl Layers<'_> {
    pub(super) fn get(
        &self,
        env_key: &str,
        file_key: &str,
        file_value: Option<String>,
    ) -> Option<Sourced> {
        if let Some(value) = self.env.get(env_key) {
            return Some(Sourced {
                value: value.clone(),
                setting: env_key.to_owned(),
            });
        }
        file_value.map(|value| Sourced {
            value,
            setting: format!("{file_key} in {}", self.file_name),
        })
    }
}

/// The S3 values from all layers, before checking they are complete.
pub(super) struct S3Layers {
    pub(super) endpoint: Option<Sourced>,
    pub(super) bucket: Option<Sourced>,
    pub(super) region: Option<Sourced>,
    pub(super) access_key: Option<Sourced>,
    pub(super) secret_key: Option<Sourced>,
    pub(super) path_style: Option<Sourced>,
    /// `AWS_ACCESS_KEY_ID`, used when neither STOWAGE key is set.
    pub(super) aws_access_key: Option<Sourced>,
    /// `AWS_SECRET_ACCESS_KEY`, likewise.
    pub(super) aws_secret_key: Option<Sourced>,
    /// `AWS_SESSION_TOKEN`: temporary credentials, which are refused.
    pub(super) aws_session_token: Option<Sourced>,
}

impl S3Layers {
    pub(super) fn resolve(mut self, data_dir: &Path) -> Result<ObjectStoreSettings, ConfigError> {
        self.use_aws_credentials()?;
        let required = [
            ("STOWAGE_S3_ENDPOINT", &self.endpoint),
            ("STOWAGE_S3_BUCKET", &self.bucket),
            ("STOWAGE_S3_REGION", &self.region),
            ("STOWAGE_S3_ACCESS_KEY", &self.access_key),
            ("STOWAGE_S3_SECRET_KEY", &self.secret_key),
        ];
        let (given, missing): (Vec<_>, Vec<_>) = required.iter().partition(|(_, v)| v.is_some());
        if given.is_empty() {
            if let Some(path_style) = &self.path_style {
                return Err(invalid(
                    path_style,
                    "is set but no other S3 setting is; the local object store has no path style",
                ));
            }
            return Ok(ObjectStoreSettings::Local {
                root: data_dir.join(OBJECTS_DIR_NAME),
            });
        }
        if !missing.is_empty() {
            let names = |list: &[&(&str, &Option<Sourced>)]| {
                list.iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(ConfigError::PartialS3 {
                given: names(&given),
                missing: names(&missing),
            });
        }
        let [endpoint, bucket, region, access_key, secret_key] = [
            self.endpoint,
            self.bucket,
            self.region,
            self.access_key,
            self.secret_key,
        ]
        .map(|v| v.expect("all required S3 settings are present"));
        Ok(ObjectStoreSettings::S3(S3Settings {
            endpoint: parse_endpoint(&endpoint)?,
            bucket: parse_bucket(&bucket)?,
            region: non_empty(&region)?,
            access_key: non_empty(&access_key)?,
            secret_key: SecretString::from(non_empty(&secret_key)?),
            path_style: self.path_style.map_or(Ok(false), |v| parse_bool(&v))?,
        }))
    }
}

/// The certificate and key paths from all layers: both or neither.
pub(super) struct TlsLayers {
    pub(super) cert: Option<Sourced>,
    pub(super) key: Option<Sourced>,
}

impl TlsLayers {
    /// Loads and checks both files now, so a bad certificate stops the
    /// server at start rather than failing every handshake.
    pub(super) fn resolve(self) -> Result<Option<TlsSettings>, ConfigError> {
        let (cert, key) = match (self.cert, self.key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(given), None) => return Err(partial_tls(&given, "STOWAGE_TLS_KEY", "tls_key")),
            (None, Some(given)) => {
                return Err(partial_tls(&given, "STOWAGE_TLS_CERT", "tls_cert"));
            }
        };
        let (cert_path, key_path) = (parse_file(&cert)?, parse_file(&key)?);
        TlsSettings::load(&cert_path, &key_path)
            .map(Some)
            .map_err(|err| match err {
                TlsError::Certificate { .. } => invalid(&cert, err),
                TlsError::Key { .. } | TlsError::Mismatch { .. } => invalid(&key, err),
            })
    }
}

fn partial_tls(given: &Sourced, missing_env: &str, missing_key: &str) -> ConfigError {
    ConfigError::PartialTls {
        given: given.setting.clone(),
        missing: format!("{missing_env} (or {missing_key} in the file)"),
    }
}

impl S3Layers {
    /// With S3 configured (any `STOWAGE_S3_*` but the keys given) and no
    /// key given, takes the keys from the standard AWS variables.
    fn use_aws_credentials(&mut self) -> Result<(), ConfigError> {
        let s3_configured = [&self.endpoint, &self.bucket, &self.region]
            .iter()
            .any(|v| v.is_some());
        if !s3_configured || self.access_key.is_some() || self.secret_key.is_some() {
            return Ok(());
        }
        if self.aws_access_key.is_none() && self.aws_secret_key.is_none() {
            return Ok(());
        }
        if let Some(token) = &self.aws_session_token {
            return Err(invalid(
                token,
                "is set, but temporary AWS credentials are not supported; \
                 give long-lived keys in STOWAGE_S3_ACCESS_KEY and STOWAGE_S3_SECRET_KEY",
            ));
        }
        self.access_key = self.aws_access_key.take();
        self.secret_key = self.aws_secret_key.take();
        Ok(())
    }
}

pub(super) fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::File {
        path: path.to_owned(),
        problem: format!("cannot be read - {err}"),
    })?;
    toml::from_str(&text).map_err(|err| ConfigError::File {
        path: path.to_owned(),
        problem: format!(
            "is not valid TOML for stowage-server - {}",
            err.to_string().trim_end()
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use crate::configuration::{ObjectStoreSettings, Settings};

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, crate::configuration::ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_sources(None, &env)
    }

    const S3: [(&str, &str); 3] = [
        ("STOWAGE_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("STOWAGE_S3_BUCKET", "stowage"),
        ("STOWAGE_S3_REGION", "eu-west-1"),
    ];
    const AWS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
        ("AWS_SECRET_ACCESS_KEY", "secret-from-env"),
    ];

    fn keys(settings: &Settings) -> (String, String) {
        let ObjectStoreSettings::S3(s3) = &settings.object_store else {
            panic!("expected S3 settings, got {:?}", settings.object_store);
        };
        (
            s3.access_key.clone(),
            s3.secret_key.expose_secret().to_owned(),
        )
    }

    #[test]
    fn s3_credentials_fall_back_to_the_standard_aws_variables() {
        let loaded = settings(&[S3.as_slice(), AWS.as_slice()].concat()).unwrap();

        assert_eq!(
            keys(&loaded),
            ("AKIDFROMENV".to_owned(), "secret-from-env".to_owned())
        );
    }

    #[test]
    fn stowage_keys_win_over_the_aws_variables() {
        let own = [
            ("STOWAGE_S3_ACCESS_KEY", "AKIDOWN"),
            ("STOWAGE_S3_SECRET_KEY", "own-secret"),
        ];
        let loaded = settings(&[S3.as_slice(), AWS.as_slice(), own.as_slice()].concat()).unwrap();

        assert_eq!(
            keys(&loaded),
            ("AKIDOWN".to_owned(), "own-secret".to_owned())
        );
    }

    #[test]
    fn aws_variables_alone_keep_the_local_store() {
        let loaded = settings(&AWS).unwrap();

        assert!(matches!(
            loaded.object_store,
            ObjectStoreSettings::Local { .. }
        ));
    }

    #[test]
    fn temporary_aws_credentials_are_refused_by_name() {
        let token = [("AWS_SESSION_TOKEN", "token")];
        let err =
            settings(&[S3.as_slice(), AWS.as_slice(), token.as_slice()].concat()).unwrap_err();

        assert!(
            err.to_string()
                .starts_with("AWS_SESSION_TOKEN: is set, but temporary AWS credentials"),
            "{err}"
        );
    }
}
