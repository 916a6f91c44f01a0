//! The project's wrangler configuration (`wrangler.json`, `wrangler.jsonc` or `wrangler.toml`),
//! read as wrangler reads it, and its `.dev.vars`.
//!
//! Keys that Dormouse honours shape the [`WorkerConfig`]; keys that change nothing here are
//! accepted (some with a warning); a binding Dormouse cannot provide stops startup with a message
//! naming the key. Nothing is silently dropped.

mod compat;
mod dotenv;
pub(crate) mod jsonc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dormouse_config::Migration;
use serde_json::{Map, Value};

pub use compat::{Compatibility, Feature};

use crate::error::{Result, WorkersError};

/// Config file names, in the order wrangler prefers them.
pub const CONFIG_FILES: [&str; 3] = ["wrangler.json", "wrangler.jsonc", "wrangler.toml"];

/// Entry points tried when `main` is not set.
const DEFAULT_MAINS: [&str; 2] = ["src/index.ts", "src/index.js"];

/// Keys read for their meaning.
const HONOURED: &[&str] = &[
    "name",
    "main",
    "compatibility_date",
    "compatibility_flags",
    "durable_objects",
    "migrations",
    "vars",
    "env",
    "limits",
    "tsconfig",
];

/// Keys about deployment to Cloudflare: nothing to do with them here.
const DEPLOYMENT_ONLY: &[&str] = &[
    "$schema",
    "account_id",
    "workers_dev",
    "preview_urls",
    "routes",
    "route",
    "observability",
    "logpush",
    "upload_source_maps",
    "keep_vars",
    "send_metrics",
    "minify",
    "no_bundle",
    "placement",
    "tail_consumers",
    "keep_names",
    "first_party_worker",
    "legacy_env",
    "dev",
    "compliance_region",
];

/// Keys whose effect Dormouse does not reproduce, with what it does instead.
const WARNED: &[(&str, &str)] = &[
    (
        "build",
        "Dormouse does not run build commands; it loads the sources as they are",
    ),
    ("triggers", "cron triggers are not run by Dormouse"),
    (
        "rules",
        "module rules are not applied; modules load by their extension",
    ),
    (
        "find_additional_modules",
        "modules are found by following imports",
    ),
    ("base_dir", "modules are found by following imports"),
    ("define", "build-time replacements are not applied"),
    (
        "alias",
        "module aliases are not applied; use tsconfig paths",
    ),
    (
        "node_compat",
        "use compatibility_flags = [\"nodejs_compat\"] instead",
    ),
    ("site", "Workers Sites are not served"),
    ("assets", "static assets are not served"),
    ("unsafe", "unsafe bindings are not provided"),
];

/// Bindings Dormouse cannot provide: a project using one does not start.
const UNSUPPORTED_BINDINGS: &[&str] = &[
    "kv_namespaces",
    "r2_buckets",
    "d1_databases",
    "services",
    "queues",
    "analytics_engine_datasets",
    "ai",
    "vectorize",
    "hyperdrive",
    "browser",
    "mtls_certificates",
    "dispatch_namespaces",
    "send_email",
    "workflows",
    "pipelines",
    "secrets_store_secrets",
    "wasm_modules",
    "text_blobs",
    "data_blobs",
    "images",
    "version_metadata",
    "logfwdr",
    "containers",
    "ratelimits",
    "worker_loaders",
    "vpc_services",
];

/// A Durable Object binding: `env[name]` is the namespace of the exported class `class_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableObjectBinding {
    /// The name on `env`.
    pub name: String,
    /// The exported class.
    pub class_name: String,
}

/// How a class keeps its data: chosen by the migration that created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    /// `new_sqlite_classes`: SQL, synchronous KV and the async KV API.
    Sqlite,
    /// `new_classes`: the async KV API only, with its tighter size limits.
    KeyValue,
}

/// One value on `env`.
#[derive(Debug, Clone, PartialEq)]
pub enum Var {
    /// A string (`vars` strings and `.dev.vars` secrets).
    Text(String),
    /// Any other JSON value from `vars`.
    Json(Value),
}

/// A project's configuration, resolved.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The file read.
    pub path: PathBuf,
    /// The directory it is in: paths in it are relative to this.
    pub root: PathBuf,
    /// `name`.
    pub name: Option<String>,
    /// The entry module, absolute.
    pub main: PathBuf,
    /// `tsconfig`, absolute, when given; otherwise `tsconfig.json` beside the config, if any.
    pub tsconfig: Option<PathBuf>,
    /// `compatibility_date` and `compatibility_flags`.
    pub compatibility: Compatibility,
    /// `durable_objects.bindings`.
    pub bindings: Vec<DurableObjectBinding>,
    /// `migrations` (always the top-level list: environments inherit it).
    pub migrations: Vec<Migration>,
    /// `vars`, then `.dev.vars`, in order.
    pub vars: Vec<(String, Var)>,
    /// `limits.cpu_ms`.
    pub cpu_limit: Option<Duration>,
    /// Things worth telling the user once: ignored keys, unknown flags.
    pub warnings: Vec<String>,
}

impl WorkerConfig {
    /// Reads the configuration of the project at `path` (a directory holding a wrangler config,
    /// or the config file itself), with the `[env.NAME]` section `env` applied.
    pub fn load(path: &Path, env: Option<&str>) -> Result<WorkerConfig> {
        let file = locate(path)?;
        // Module names are absolute paths: a relative project path would read as a package.
        let file = file.canonicalize().map_err(|source| WorkersError::Read {
            path: file.clone(),
            source,
        })?;
        let text = std::fs::read_to_string(&file).map_err(|source| WorkersError::Read {
            path: file.clone(),
            source,
        })?;
        let root = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let raw = parse_file(&file, &text)?;
        let mut config = resolve(&file, &root, raw, env)?;
        let dev_vars = match env {
            Some(env) => root.join(format!(".dev.vars.{env}")),
            None => root.join(".dev.vars"),
        };
        let dev_vars = if dev_vars.exists() {
            dev_vars
        } else {
            root.join(".dev.vars")
        };
        if dev_vars.exists() {
            let text = std::fs::read_to_string(&dev_vars).map_err(|source| WorkersError::Read {
                path: dev_vars.clone(),
                source,
            })?;
            let secrets = dotenv::parse(&text).map_err(|message| WorkersError::Config {
                path: dev_vars.clone(),
                message,
            })?;
            for (name, value) in secrets {
                config.vars.retain(|(n, _)| *n != name);
                config.vars.push((name, Var::Text(value)));
            }
        }
        Ok(config)
    }

    /// The storage backend of `class`, from the migration that created it (SQLite for a class
    /// bound without one).
    pub fn backend(&self, class: &str) -> StorageBackend {
        let mut backend = None;
        let mut current = class.to_owned();
        // Walk the migrations backwards through renames to the step that created the class.
        for migration in self.migrations.iter().rev() {
            if let Some(rename) = migration.renamed_classes.iter().find(|r| r.to == current) {
                current = rename.from.clone();
                continue;
            }
            if migration.new_sqlite_classes.contains(&current) {
                backend = Some(StorageBackend::Sqlite);
                break;
            }
            if migration.new_classes.contains(&current) {
                backend = Some(StorageBackend::KeyValue);
                break;
            }
        }
        backend.unwrap_or(StorageBackend::Sqlite)
    }

    /// Files whose change means the configuration must be read again.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path.clone(), self.root.join(".dev.vars")];
        files.extend(self.tsconfig.clone());
        files
    }
}

/// The config file for `path`: the file itself, or the first of [`CONFIG_FILES`] in it.
fn locate(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(WorkersError::NoProject(path.to_path_buf()));
    }
    CONFIG_FILES
        .iter()
        .map(|name| path.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| WorkersError::NoProject(path.to_path_buf()))
}

fn parse_file(path: &Path, text: &str) -> Result<Map<String, Value>> {
    let config_error = |message: String| WorkersError::Config {
        path: path.to_path_buf(),
        message,
    };
    let value = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<Value>(text).map_err(|e| config_error(e.to_string()))?
    } else {
        jsonc::parse(text).map_err(config_error)?
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(config_error("the configuration must be an object".into())),
    }
}

/// Keys of the top level an `[env.NAME]` section inherits when it does not set them.
const INHERITED: &[&str] = &[
    "name",
    "main",
    "compatibility_date",
    "compatibility_flags",
    "limits",
    "tsconfig",
];

fn resolve(
    path: &Path,
    root: &Path,
    mut top: Map<String, Value>,
    env: Option<&str>,
) -> Result<WorkerConfig> {
    let error = |message: String| WorkersError::Config {
        path: path.to_path_buf(),
        message,
    };
    let migrations_value = top.remove("migrations");
    let envs = top.remove("env");
    let section = match env {
        None => top,
        Some(name) => {
            let Some(Value::Object(envs)) = envs else {
                return Err(error(format!("there is no [env.{name}] section")));
            };
            let Some(Value::Object(mut section)) = envs.get(name).cloned() else {
                let known: Vec<&String> = envs.keys().collect();
                return Err(error(format!(
                    "there is no [env.{name}] section (environments: {known:?})"
                )));
            };
            for key in INHERITED {
                if !section.contains_key(*key)
                    && let Some(value) = top.get(*key)
                {
                    section.insert((*key).to_owned(), value.clone());
                }
            }
            section
        }
    };
    let mut warnings = Vec::new();
    for (key, value) in &section {
        if HONOURED.contains(&key.as_str()) || DEPLOYMENT_ONLY.contains(&key.as_str()) {
            continue;
        }
        if UNSUPPORTED_BINDINGS.contains(&key.as_str()) {
            if is_empty(value) {
                continue;
            }
            return Err(error(format!(
                "`{key}` bindings are not supported by Dormouse (only Durable Objects and vars are); remove them or run this Worker on Cloudflare"
            )));
        }
        match WARNED.iter().find(|(k, _)| k == key) {
            Some((_, why)) => warnings.push(format!("`{key}` is ignored: {why}")),
            None => warnings.push(format!("unknown key `{key}` is ignored")),
        }
    }
    let string = |key: &str| -> Result<Option<String>> {
        match section.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(error(format!("`{key}` must be a string, not {other}"))),
        }
    };
    let name = string("name")?;
    let main = match string("main")? {
        Some(main) => {
            let main = root.join(main);
            if !main.is_file() {
                return Err(error(format!(
                    "`main` names {}, which does not exist",
                    main.display()
                )));
            }
            main
        }
        None => DEFAULT_MAINS
            .iter()
            .map(|m| root.join(m))
            .find(|m| m.is_file())
            .ok_or_else(|| {
                error(format!(
                    "no `main` is set and neither {} exists",
                    DEFAULT_MAINS.join(" nor ")
                ))
            })?,
    };
    let tsconfig = match string("tsconfig")? {
        Some(file) => Some(root.join(file)),
        None => Some(root.join("tsconfig.json")).filter(|p| p.is_file()),
    };
    let flags = match section.get("compatibility_flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(flags)) => flags
            .iter()
            .map(|f| {
                f.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| error(format!("compatibility_flags must be strings, not {f}")))
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(error(format!(
                "compatibility_flags must be a list, not {other}"
            )));
        }
    };
    let compatibility = Compatibility {
        date: string("compatibility_date")?,
        flags,
    };
    compatibility.validate().map_err(error)?;
    for flag in compatibility.unknown_flags() {
        warnings.push(format!(
            "compatibility flag `{flag}` is not implemented by Dormouse; ignored"
        ));
    }
    let bindings = parse_bindings(section.get("durable_objects"), name.as_deref())
        .map_err(|m| error(format!("durable_objects: {m}")))?;
    let migrations: Vec<Migration> = match migrations_value {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => {
            serde_json::from_value(value).map_err(|e| error(format!("migrations: {e}")))?
        }
    };
    let vars = match section.get("vars") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(vars)) => vars
            .iter()
            .map(|(k, v)| {
                let var = match v {
                    Value::String(s) => Var::Text(s.clone()),
                    other => Var::Json(other.clone()),
                };
                (k.clone(), var)
            })
            .collect(),
        Some(other) => return Err(error(format!("`vars` must be a table, not {other}"))),
    };
    let cpu_limit = match section.get("limits").and_then(|l| l.get("cpu_ms")) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms > 0) => {
            Some(Duration::from_millis(n.as_u64().unwrap_or_default()))
        }
        Some(other) => {
            return Err(error(format!(
                "limits.cpu_ms must be a positive number, not {other}"
            )));
        }
    };
    Ok(WorkerConfig {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        name,
        main,
        tsconfig,
        compatibility,
        bindings,
        migrations,
        vars,
        cpu_limit,
        warnings,
    })
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn parse_bindings(
    value: Option<&Value>,
    own_name: Option<&str>,
) -> std::result::Result<Vec<DurableObjectBinding>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(bindings) = value.get("bindings") else {
        return Ok(Vec::new());
    };
    let Value::Array(bindings) = bindings else {
        return Err(format!("`bindings` must be a list, not {bindings}"));
    };
    let mut out: Vec<DurableObjectBinding> = Vec::new();
    for binding in bindings {
        let Value::Object(fields) = binding else {
            return Err(format!("a binding must be a table, not {binding}"));
        };
        for key in fields.keys() {
            if !matches!(
                key.as_str(),
                "name" | "class_name" | "script_name" | "environment"
            ) {
                return Err(format!("unknown key `{key}` in a binding"));
            }
        }
        let field = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
        let name = field("name").ok_or("a binding needs a `name`")?;
        let class_name = field("class_name")
            .ok_or_else(|| format!("the binding `{name}` needs a `class_name`"))?;
        if let Some(script) = field("script_name")
            && Some(script.as_str()) != own_name
        {
            return Err(format!(
                "the binding `{name}` names a class of another Worker (script_name = {script:?}); Dormouse runs one Worker per process"
            ));
        }
        if out.iter().any(|b| b.name == name) {
            return Err(format!("the binding `{name}` is declared twice"));
        }
        out.push(DurableObjectBinding { name, class_name });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
