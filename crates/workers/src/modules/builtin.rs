//! The modules Dormouse provides: `cloudflare:workers`, and with `nodejs_compat` the parts of
//! Node's API that Workers code most often imports.
//!
//! Their values are made by the prelude (`js/`); each module re-exports the matching entries of
//! the prelude's module table, a non-enumerable global under a registered symbol that holds only
//! what the modules export.

/// Node modules available with `nodejs_compat`, for messages.
pub(crate) const NODE_MODULES: &[&str] = &["node:buffer", "node:events", "node:async_hooks"];

/// A module provided by Dormouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Builtin {
    CloudflareWorkers,
    NodeBuffer,
    NodeEvents,
    NodeAsyncHooks,
}

impl Builtin {
    /// The module's name in the engine (and in the prelude's module table).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::CloudflareWorkers => "cloudflare:workers",
            Builtin::NodeBuffer => "node:buffer",
            Builtin::NodeEvents => "node:events",
            Builtin::NodeAsyncHooks => "node:async_hooks",
        }
    }

    /// The Node module called `name` (without `node:`), if Dormouse provides it.
    pub(crate) fn from_node_name(name: &str) -> Option<Builtin> {
        match name {
            "buffer" => Some(Builtin::NodeBuffer),
            "events" => Some(Builtin::NodeEvents),
            "async_hooks" => Some(Builtin::NodeAsyncHooks),
            _ => None,
        }
    }

    /// From the engine's module name.
    pub(crate) fn from_name(name: &str) -> Option<Builtin> {
        match name {
            "cloudflare:workers" => Some(Builtin::CloudflareWorkers),
            _ => Builtin::from_node_name(name.strip_prefix("node:")?),
        }
    }

    pub(crate) fn is_async_hooks(self) -> bool {
        self == Builtin::NodeAsyncHooks
    }

    /// The source of the module: it re-exports the entries of the prelude's module table.
    pub(crate) fn source(self) -> String {
        let exports: &[&str] = match self {
            Builtin::CloudflareWorkers => &[
                "DurableObject",
                "WorkerEntrypoint",
                "RpcTarget",
                "env",
                "waitUntil",
            ],
            Builtin::NodeBuffer => &["Buffer", "constants", "kMaxLength", "atob", "btoa", "Blob"],
            Builtin::NodeEvents => &["EventEmitter", "once", "on", "getEventListeners"],
            Builtin::NodeAsyncHooks => &["AsyncLocalStorage", "AsyncResource"],
        };
        let name = self.name();
        let mut source = format!(
            "const m = globalThis[Symbol.for({MODULE_TABLE:?})][{name:?}];\nexport default m.default;\n"
        );
        for export in exports {
            source.push_str(&format!("export const {export} = m.{export};\n"));
        }
        source
    }
}

/// The registered symbol under which the prelude's module table is a global.
pub(crate) const MODULE_TABLE: &str = "dormouse.modules";
