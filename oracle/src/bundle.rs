//! Workers projects as workerd runs them: bundled with esbuild, as wrangler does, and served by a
//! generated workerd configuration that mirrors each project's wrangler configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use dormouse_workers::{StorageBackend, Var, WorkerConfig};

/// esbuild, installed beside workerd by `scripts/install-workerd`.
pub fn esbuild() -> PathBuf {
    dormouse_testing::Workerd::binary()
        .parent()
        .expect("node_modules/.bin")
        .join("esbuild")
}

/// Bundles the project at `project` into `out/<name>.js`, as wrangler does (ES module,
/// `cloudflare:*` and `node:*` left to the runtime). Returns the bundle's file name.
pub fn bundle(project: &Path, name: &str, out: &Path) -> String {
    let config = WorkerConfig::load(project, None).expect("a wrangler project");
    let file = format!("{name}.js");
    let status = Command::new(esbuild())
        .arg(&config.main)
        .arg("--bundle")
        .arg("--format=esm")
        .arg("--platform=neutral")
        .arg("--main-fields=module,main")
        .arg("--conditions=workerd,worker,browser")
        .arg("--external:cloudflare:*")
        .arg("--external:node:*")
        .arg(format!("--outfile={}", out.join(&file).display()))
        .arg("--log-level=warning")
        .current_dir(project)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run esbuild (scripts/install-workerd installs it): {e}")
        });
    assert!(status.success(), "esbuild failed on {}", project.display());
    file
}

/// One worker of a generated workerd configuration.
#[derive(Debug)]
pub struct Served<'a> {
    /// The socket its HTTP is served on.
    pub socket: &'a str,
    /// Its bundle, in the configuration's directory.
    pub bundle: &'a str,
    /// Its wrangler configuration.
    pub config: &'a WorkerConfig,
}

/// A workerd configuration serving `workers`, each with its project's compatibility date and
/// flags, Durable Object classes (SQLite-backed ones with SQL enabled), bindings and vars; objects
/// keep their storage in memory.
pub fn workerd_config(workers: &[Served<'_>]) -> String {
    let mut services = String::new();
    let mut sockets = String::new();
    let mut definitions = String::new();
    for (index, worker) in workers.iter().enumerate() {
        let _ = write!(services, "(name = \"s{index}\", worker = .w{index}), ");
        let _ = write!(
            sockets,
            "(name = \"{}\", address = \"127.0.0.1:0\", http = (), service = \"s{index}\"), ",
            worker.socket
        );
        let config = worker.config;
        let namespaces: Vec<String> = config
            .bindings
            .iter()
            .map(|b| {
                let sql = config.backend(&b.class_name) == StorageBackend::Sqlite;
                format!(
                    "(className = \"{}\", uniqueKey = \"{}-{}\", enableSql = {sql})",
                    b.class_name, worker.socket, b.class_name
                )
            })
            .collect();
        let mut bindings: Vec<String> = config
            .bindings
            .iter()
            .map(|b| {
                format!(
                    "(name = \"{}\", durableObjectNamespace = \"{}\")",
                    b.name, b.class_name
                )
            })
            .collect();
        for (name, var) in &config.vars {
            bindings.push(match var {
                Var::Text(text) => format!("(name = \"{name}\", text = {text:?})"),
                Var::Json(json) => format!("(name = \"{name}\", json = {:?})", json.to_string()),
            });
        }
        let flags: Vec<String> = config
            .compatibility
            .flags
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect();
        let _ = write!(
            definitions,
            "const w{index} :Workerd.Worker = (\n  modules = [ (name = \"worker\", esModule = embed \"{}\") ],\n  compatibilityDate = \"{}\",\n  compatibilityFlags = [{}],\n  durableObjectNamespaces = [ {} ],\n  durableObjectStorage = (inMemory = void),\n  bindings = [ {} ],\n);\n",
            worker.bundle,
            config.compatibility.date.as_deref().unwrap_or("2025-09-01"),
            flags.join(", "),
            namespaces.join(", "),
            bindings.join(", "),
        );
    }
    format!(
        "using Workerd = import \"/workerd/workerd.capnp\";\nconst config :Workerd.Config = (\n  services = [ {services}(name = \"storage\", disk = (writable = true)) ],\n  sockets = [ {sockets}]\n);\n{definitions}"
    )
}
