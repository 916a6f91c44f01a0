//! [`Project`]: a Workers project on disk, read: its configuration and how its modules resolve.

use std::path::{Path, PathBuf};

use crate::config::{Feature, WorkerConfig};
use crate::error::{Result, WorkersError};
use crate::modules::resolve::Resolver;
use crate::modules::tsconfig::TsConfig;

/// A Workers project: its wrangler configuration and its `tsconfig.json`.
#[derive(Debug, Clone)]
pub struct Project {
    /// The configuration.
    pub config: WorkerConfig,
    pub(crate) tsconfig: TsConfig,
}

impl Project {
    /// Reads the project at `path` (its directory, or its config file), with the `[env.NAME]`
    /// section `env` applied.
    pub fn open(path: &Path, env: Option<&str>) -> Result<Project> {
        let config = WorkerConfig::load(path, env)?;
        let tsconfig = match &config.tsconfig {
            Some(file) => TsConfig::load(file).map_err(|message| WorkersError::Config {
                path: file.clone(),
                message,
            })?,
            None => TsConfig::default(),
        };
        Ok(Project { config, tsconfig })
    }

    /// How specifiers in this project resolve.
    pub(crate) fn resolver(&self) -> Resolver {
        let compatibility = &self.config.compatibility;
        Resolver::new(
            self.tsconfig.clone(),
            compatibility.enabled(Feature::NodeCompat),
            compatibility.enabled(Feature::AsyncLocalStorage),
        )
    }

    /// `path` as users know it: relative to the project's directory.
    pub fn shown(&self, path: &Path) -> String {
        let root = crate::modules::resolve::normalise(&self.config.root);
        let path = crate::modules::resolve::normalise(path);
        path.strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// The project's directory.
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Files that were not modules but shape the project (configuration, `.dev.vars`,
    /// `tsconfig.json`): a change to one means the project must be read again.
    pub fn config_files(&self) -> Vec<PathBuf> {
        self.config.watched_files()
    }
}
