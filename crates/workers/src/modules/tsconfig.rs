//! What `tsconfig.json` says about module resolution and JSX: `baseUrl`, `paths`, `jsx`,
//! `jsxImportSource`, `jsxFactory`, `jsxFragmentFactory` (following relative `extends`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::compile::JsxSettings;
use crate::config::jsonc;

/// Longest `extends` chain followed, against cycles.
const MAX_EXTENDS: usize = 8;

/// The parts of a tsconfig that matter at run time.
#[derive(Debug, Clone, Default)]
pub(crate) struct TsConfig {
    /// `paths` patterns with their targets, resolved against `baseUrl` (or the tsconfig's
    /// directory), in the order written.
    pub(crate) paths: Vec<(String, Vec<PathBuf>)>,
    /// `baseUrl`, when set: bare specifiers are also tried relative to it.
    pub(crate) base_url: Option<PathBuf>,
    pub(crate) jsx: JsxSettings,
}

impl TsConfig {
    /// Reads `path` and what it extends.
    pub(crate) fn load(path: &Path) -> Result<TsConfig, String> {
        let mut config = TsConfig::default();
        let mut chain = Vec::new();
        let mut next = Some(path.to_path_buf());
        while let Some(file) = next.take() {
            if chain.len() >= MAX_EXTENDS || chain.contains(&file) {
                return Err(format!(
                    "{}: `extends` goes round in circles",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let value = jsonc::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
            chain.push(file);
            if let Some(Value::String(parent)) = value.get("extends")
                && parent.starts_with('.')
            {
                let mut parent = dir.join(parent);
                if parent.extension().is_none() {
                    parent.set_extension("json");
                }
                next = Some(parent);
            }
            let options = value.get("compilerOptions").cloned().unwrap_or_default();
            // Nearer files win: keep what a file already set over what its parent sets.
            if config.base_url.is_none()
                && let Some(Value::String(base)) = options.get("baseUrl")
            {
                config.base_url = Some(dir.join(base));
            }
            if config.paths.is_empty()
                && let Some(Value::Object(paths)) = options.get("paths")
            {
                let base = config.base_url.clone().unwrap_or_else(|| dir.clone());
                for (pattern, targets) in paths {
                    let targets = targets
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|target| base.join(target))
                        .collect();
                    config.paths.push((pattern.clone(), targets));
                }
            }
            let text = |key: &str| options.get(key).and_then(Value::as_str).map(str::to_owned);
            if let Some(jsx) = text("jsx")
                && !config.jsx.classic
                && config.jsx.import_source.is_none()
            {
                config.jsx.classic = jsx == "react";
            }
            config.jsx.import_source = config.jsx.import_source.take().or(text("jsxImportSource"));
            config.jsx.factory = config.jsx.factory.take().or(text("jsxFactory"));
            config.jsx.fragment = config.jsx.fragment.take().or(text("jsxFragmentFactory"));
        }
        Ok(config)
    }

    /// The candidate paths `specifier` maps to through `paths`, most specific pattern first.
    pub(crate) fn candidates(&self, specifier: &str) -> Vec<PathBuf> {
        let mut best: Option<(usize, &str, &Vec<PathBuf>)> = None;
        for (pattern, targets) in &self.paths {
            let matched = match pattern.split_once('*') {
                None if pattern == specifier => Some((usize::MAX, "")),
                None => None,
                Some((prefix, suffix)) => specifier
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(suffix))
                    .map(|star| (prefix.len(), star)),
            };
            if let Some((score, star)) = matched
                && best.is_none_or(|(s, _, _)| score > s)
            {
                best = Some((score, star, targets));
            }
        }
        let Some((_, star, targets)) = best else {
            return Vec::new();
        };
        targets
            .iter()
            .map(|target| PathBuf::from(target.to_string_lossy().replace('*', star)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_patterns_map_to_candidates() {
        let config = TsConfig {
            paths: vec![
                ("@/*".into(), vec![PathBuf::from("/p/./*")]),
                ("@lib/*".into(), vec![PathBuf::from("/p/lib/*")]),
                ("exact".into(), vec![PathBuf::from("/p/exact.ts")]),
            ],
            ..TsConfig::default()
        };
        assert_eq!(
            config.candidates("@/src/types"),
            [PathBuf::from("/p/./src/types")]
        );
        assert_eq!(config.candidates("@lib/a"), [PathBuf::from("/p/lib/a")]);
        assert_eq!(config.candidates("exact"), [PathBuf::from("/p/exact.ts")]);
        assert!(config.candidates("other").is_empty());
    }

    #[test]
    fn the_seed_tsconfig_is_read() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../seeds/workers/seed004-client-registry/tsconfig.json");
        let config = TsConfig::load(&path).unwrap();
        let candidates = config.candidates("@/src/types");
        assert_eq!(candidates.len(), 1);
        assert!(candidates[0].ends_with("src/types"), "{candidates:?}");
    }
}
