//! Module specifiers to files, the way a bundler resolves them for Workers: relative paths with
//! TypeScript's extension rules, `tsconfig.json` `paths`, packages in `node_modules` (their
//! `exports` with the `workerd`, `worker`, `browser`, `import` and `default` conditions, then
//! `module`, then `main`), and the built-in modules.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::builtin::{self, Builtin};
use super::tsconfig::TsConfig;

/// Conditions a package's `exports` are matched against, as wrangler's bundler does.
const CONDITIONS: &[&str] = &[
    "workerd", "worker", "browser", "import", "module", "default",
];

/// Extensions tried, in order, for a path written without one.
const EXTENSIONS: &[&str] = &[
    ".ts", ".tsx", ".mts", ".js", ".mjs", ".jsx", ".cjs", ".json",
];

/// Files tried in a directory.
const INDEXES: &[&str] = &[
    "index.ts",
    "index.tsx",
    "index.js",
    "index.mjs",
    "index.jsx",
    "index.json",
];

/// Where a specifier leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A file, by its absolute (normalised) path.
    File(PathBuf),
    /// A module provided by Dormouse.
    Builtin(Builtin),
}

/// Resolves specifiers for one project.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    tsconfig: TsConfig,
    /// `nodejs_compat`: `node:` modules are available.
    node_compat: bool,
    /// `nodejs_als` (or `nodejs_compat`): `node:async_hooks` is available.
    async_local_storage: bool,
}

impl Resolver {
    pub(crate) fn new(tsconfig: TsConfig, node_compat: bool, async_local_storage: bool) -> Self {
        Resolver {
            tsconfig,
            node_compat,
            async_local_storage,
        }
    }

    /// Resolves `specifier`, imported by the module at `importer`.
    pub(crate) fn resolve(&self, specifier: &str, importer: &Path) -> Result<Resolved, String> {
        if let Some(result) = self.builtin(specifier) {
            return result;
        }
        let dir = importer.parent().unwrap_or(Path::new("/"));
        if specifier.starts_with("./") || specifier.starts_with("../") || specifier == "." {
            return resolve_path(&dir.join(specifier)).map(Resolved::File);
        }
        if specifier.starts_with('/') {
            return resolve_path(Path::new(specifier)).map(Resolved::File);
        }
        let candidates = self.tsconfig.candidates(specifier);
        if !candidates.is_empty() {
            return candidates
                .iter()
                .find_map(|candidate| resolve_path(candidate).ok())
                .map(Resolved::File)
                .ok_or_else(|| {
                    format!("tsconfig `paths` map it to {candidates:?}, and none of them exists")
                });
        }
        if let Some(stripped) = specifier.strip_prefix('#') {
            return resolve_imports(stripped, specifier, dir).map(Resolved::File);
        }
        match resolve_package(specifier, dir) {
            Ok(path) => Ok(Resolved::File(path)),
            Err(error) => {
                // `buffer`, `events`, … name Node's modules when no such package is installed.
                if let Some(module) = Builtin::from_node_name(specifier)
                    && self.node_compat
                {
                    return Ok(Resolved::Builtin(module));
                }
                if let Some(base) = &self.tsconfig.base_url
                    && let Ok(path) = resolve_path(&base.join(specifier))
                {
                    return Ok(Resolved::File(path));
                }
                Err(error)
            }
        }
    }

    /// Built-in modules: `cloudflare:workers` always, `node:` ones with their flag.
    fn builtin(&self, specifier: &str) -> Option<Result<Resolved, String>> {
        if specifier == "cloudflare:workers" {
            return Some(Ok(Resolved::Builtin(Builtin::CloudflareWorkers)));
        }
        if specifier.starts_with("cloudflare:") {
            return Some(Err(format!(
                "`{specifier}` is not provided by Dormouse (only cloudflare:workers is)"
            )));
        }
        let name = specifier.strip_prefix("node:")?;
        let Some(module) = Builtin::from_node_name(name) else {
            return Some(Err(format!(
                "`{specifier}` is not available in Dormouse; with the nodejs_compat flag, {} are",
                builtin::NODE_MODULES.join(", ")
            )));
        };
        let allowed = self.node_compat || (module.is_async_hooks() && self.async_local_storage);
        Some(if allowed {
            Ok(Resolved::Builtin(module))
        } else {
            Err(format!(
                "`{specifier}` needs the nodejs_compat compatibility flag (compatibility_flags = [\"nodejs_compat\"])"
            ))
        })
    }
}

/// A file path with its extension rules applied: as written, with an extension added, with
/// `.js` replaced by `.ts` (TypeScript's convention for ES modules), or a directory's index.
fn resolve_path(path: &Path) -> Result<PathBuf, String> {
    let path = normalise(path);
    if path.is_file() {
        return Ok(path);
    }
    let text = path.to_string_lossy();
    for extension in EXTENSIONS {
        let candidate = PathBuf::from(format!("{text}{extension}"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    for (written, typescript) in [(".js", ".ts"), (".js", ".tsx"), (".mjs", ".mts")] {
        if let Some(stem) = text.strip_suffix(written) {
            let candidate = PathBuf::from(format!("{stem}{typescript}"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if path.is_dir() {
        if let Some(manifest) = read_manifest(&path)
            && let Some(entry) = main_entry(&manifest)
            && let Ok(found) = resolve_path(&path.join(entry))
        {
            return Ok(found);
        }
        for index in INDEXES {
            let candidate = path.join(index);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!("{} does not exist", path.display()))
}

/// `pkg`, `pkg/sub/path`, `@scope/pkg/sub` from the nearest `node_modules` up from `dir`.
fn resolve_package(specifier: &str, dir: &Path) -> Result<PathBuf, String> {
    let (name, subpath) = split_package(specifier);
    let mut searched = Vec::new();
    for ancestor in dir.ancestors() {
        let package_dir = ancestor.join("node_modules").join(name);
        if !package_dir.is_dir() {
            searched.push(ancestor.join("node_modules"));
            continue;
        }
        let manifest = read_manifest(&package_dir);
        if let Some(exports) = manifest.as_ref().and_then(|m| m.get("exports")) {
            let key = match subpath {
                "" => ".".to_owned(),
                sub => format!("./{sub}"),
            };
            return match exports_target(exports, &key) {
                Some(target) => resolve_path(&package_dir.join(target)),
                None => Err(format!(
                    "the package `{name}` does not export `{key}` for the conditions {CONDITIONS:?}"
                )),
            };
        }
        if subpath.is_empty() {
            let entry = manifest
                .as_ref()
                .and_then(main_entry)
                .unwrap_or_else(|| "index.js".to_owned());
            return resolve_path(&package_dir.join(entry));
        }
        return resolve_path(&package_dir.join(subpath));
    }
    Err(format!(
        "no package `{name}` in node_modules (run `npm install`; searched {})",
        searched
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `#name` through the `imports` of the nearest `package.json` up from `dir`.
fn resolve_imports(name: &str, specifier: &str, dir: &Path) -> Result<PathBuf, String> {
    for ancestor in dir.ancestors() {
        let Some(manifest) = read_manifest(ancestor) else {
            continue;
        };
        let Some(imports) = manifest.get("imports") else {
            break;
        };
        let key = format!("#{name}");
        return match subpath_target(imports, &key) {
            Some(target) if target.starts_with("./") => resolve_path(&ancestor.join(target)),
            Some(target) => resolve_package(&target, ancestor),
            None => Err(format!("`{specifier}` is not in the package's `imports`")),
        };
    }
    Err(format!(
        "`{specifier}`: no package.json with `imports` found"
    ))
}

/// A package's entry without `exports`: `module`, then `main`.
fn main_entry(manifest: &Value) -> Option<String> {
    ["module", "main"]
        .iter()
        .find_map(|field| manifest.get(*field).and_then(Value::as_str))
        .map(str::to_owned)
}

fn read_manifest(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// `(name, subpath)` of a bare specifier.
fn split_package(specifier: &str) -> (&str, &str) {
    let mut slashes = specifier.match_indices('/');
    let cut = if specifier.starts_with('@') {
        slashes.nth(1)
    } else {
        slashes.next()
    };
    match cut {
        Some((at, _)) => (&specifier[..at], &specifier[at + 1..]),
        None => (specifier, ""),
    }
}

/// The file `exports` maps `key` (`.` or `./sub`) to, for [`CONDITIONS`].
fn exports_target(exports: &Value, key: &str) -> Option<String> {
    let is_subpath_map = exports
        .as_object()
        .is_some_and(|map| map.keys().any(|k| k.starts_with('.')));
    if is_subpath_map {
        subpath_target(exports, key)
    } else if key == "." {
        conditional_target(exports, None)
    } else {
        None
    }
}

/// Looks `key` up in a subpath map (`exports` or `imports`), with `*` patterns.
fn subpath_target(map: &Value, key: &str) -> Option<String> {
    let map = map.as_object()?;
    if let Some(target) = map.get(key) {
        return conditional_target(target, None);
    }
    let mut best: Option<(usize, &str, &Value)> = None;
    for (pattern, target) in map {
        let Some((prefix, suffix)) = pattern.split_once('*') else {
            continue;
        };
        if let Some(star) = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            && best.is_none_or(|(len, _, _)| prefix.len() > len)
        {
            best = Some((prefix.len(), star, target));
        }
    }
    let (_, star, target) = best?;
    conditional_target(target, Some(star))
}

/// A target: a path, a list of alternatives, or conditions (first matching key in order).
fn conditional_target(target: &Value, star: Option<&str>) -> Option<String> {
    match target {
        Value::String(path) => Some(match star {
            Some(star) => path.replace('*', star),
            None => path.clone(),
        }),
        Value::Array(alternatives) => alternatives
            .iter()
            .find_map(|alternative| conditional_target(alternative, star)),
        Value::Object(conditions) => conditions
            .iter()
            .filter(|(condition, _)| CONDITIONS.contains(&condition.as_str()))
            .find_map(|(_, value)| conditional_target(value, star)),
        _ => None,
    }
}

/// `path` without `.` and `..` components.
pub(crate) fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
