//! The configuration file: class migrations and variables, in wrangler's TOML shape.
//!
//! ```toml
//! [vars]
//! GREETING = "hello"
//!
//! [[migrations]]
//! tag = "v1"
//! new_sqlite_classes = ["ChatRoom"]
//!
//! [[migrations]]
//! tag = "v2"
//! renamed_classes = [{ from = "ChatRoom", to = "Room" }]
//! deleted_classes = ["Obsolete"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::migration::Migration;
use serde::Deserialize;

/// The parsed file. Unknown keys are errors, so that a typo never goes unnoticed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Plain-text variables, visible to the application as `env.var(name)`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Class migrations, applied once each, in order.
    #[serde(default)]
    pub migrations: Vec<Migration>,
}

impl ConfigFile {
    /// Parses the TOML text of a configuration file.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ConfigFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrangler_shaped_migrations() {
        let config = ConfigFile::parse(
            r#"
            [vars]
            GREETING = "hi"
            [[migrations]]
            tag = "v1"
            new_sqlite_classes = ["Room"]
            [[migrations]]
            tag = "v2"
            renamed_classes = [{ from = "Room", to = "ChatRoom" }]
            deleted_classes = ["Old"]
            "#,
        )
        .unwrap();
        assert_eq!(config.vars["GREETING"], "hi");
        assert_eq!(config.migrations[0].new_sqlite_classes, ["Room"]);
        assert_eq!(config.migrations[1].renamed_classes[0].to, "ChatRoom");
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let error =
            ConfigFile::parse("[[migrations]]\ntag = \"v1\"\nnew_clases = [\"A\"]\n").unwrap_err();
        assert!(
            error.contains("new_clases") && error.contains("line 3"),
            "{error}"
        );
        assert!(
            ConfigFile::parse("[[migrations]]\nnew_classes = []\n")
                .unwrap_err()
                .contains("tag")
        );
    }
}
