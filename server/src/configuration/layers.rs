//! The layers of settings — the TOML file and the environment — and how one
//! key is looked up across them, remembering where each value came from so an
//! error can name it.

use std::collections::HashMap;
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;

use super::values::{invalid, non_empty, parse_bool, parse_bucket, parse_endpoint};
use super::{ConfigError, OBJECTS_DIR_NAME, ObjectStoreSettings, S3Settings};

/// The shape of the TOML file; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSettings {
    pub(super) listen: Option<String>,
    pub(super) data_dir: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) log: Option<String>,
    pub(super) s3: Option<FileS3Settings>,
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
}

impl S3Layers {
    pub(super) fn resolve(self, data_dir: &Path) -> Result<ObjectStoreSettings, ConfigError> {
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
