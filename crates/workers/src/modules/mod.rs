//! Modules: how specifiers resolve ([`resolve`]), what `tsconfig.json` adds ([`tsconfig`]), the
//! built-in modules ([`builtin`]), and the loader the engine uses, which compiles each file
//! (TypeScript stripped) as it is imported.

pub(crate) mod builtin;
pub(crate) mod resolve;
pub(crate) mod tsconfig;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rquickjs::loader::ImportAttributes;
use rquickjs::module::Declared;
use rquickjs::{Ctx, Module};

use crate::compile::{self, CompileOptions};
use crate::config::Feature;
use crate::engine::state::engine;
use crate::project::Project;
use builtin::Builtin;
use resolve::{Resolved, Resolver};

/// The engine's module loader; the engine tells it which project a load is for.
#[derive(Clone, Default)]
pub(crate) struct Loader {
    state: Rc<RefCell<LoaderState>>,
}

#[derive(Default)]
struct LoaderState {
    /// The project being loaded, while a load is in progress.
    project: Option<Project>,
    resolver: Option<Resolver>,
    /// The first problem met (resolution, compilation), which explains a failed load better
    /// than the exception the engine turns it into.
    first_problem: Option<String>,
}

impl Loader {
    /// A load of `project` starts.
    pub(crate) fn begin(&self, project: &Project) {
        let mut state = self.state.borrow_mut();
        state.resolver = Some(project.resolver());
        state.project = Some(project.clone());
        state.first_problem = None;
    }

    /// Whether a load is in progress.
    pub(crate) fn is_loading(&self) -> bool {
        self.state.borrow().project.is_some()
    }

    /// The load ended; returns its first problem, if any.
    pub(crate) fn end(&self) -> Option<String> {
        let mut state = self.state.borrow_mut();
        state.project = None;
        state.resolver = None;
        state.first_problem.take()
    }

    fn problem(&self, message: String) -> String {
        let mut state = self.state.borrow_mut();
        if state.first_problem.is_none() {
            state.first_problem = Some(message.clone());
        }
        message
    }

    fn shown(&self, name: &str) -> String {
        match &self.state.borrow().project {
            Some(project) if name.starts_with('/') => project.shown(Path::new(name)),
            _ => name.to_owned(),
        }
    }
}

impl rquickjs::loader::Resolver for Loader {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let resolver = self.state.borrow().resolver.clone();
        let Some(resolver) = resolver else {
            return Err(rquickjs::Error::new_resolving_message(
                base,
                name,
                "modules can only be imported while the Worker loads",
            ));
        };
        let importer = if base.starts_with('/') {
            PathBuf::from(base)
        } else {
            // The main module is imported by path; anything else without a file base resolves
            // from the project's directory.
            self.state
                .borrow()
                .project
                .as_ref()
                .map(|p| p.root().join("index"))
                .unwrap_or_default()
        };
        match resolver.resolve(name, &importer) {
            Ok(Resolved::File(path)) => Ok(path.to_string_lossy().into_owned()),
            Ok(Resolved::Builtin(module)) => Ok(module.name().to_owned()),
            Err(message) => {
                let message = self.problem(format!(
                    "{}: cannot import {name:?}: {message}",
                    self.shown(base)
                ));
                Err(rquickjs::Error::new_resolving_message(base, name, message))
            }
        }
    }
}

impl rquickjs::loader::Loader for Loader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        if let Some(module) = Builtin::from_name(name) {
            return Module::declare(ctx.clone(), name, module.source());
        }
        let path = PathBuf::from(name);
        let shown = self.shown(name);
        let fail = |loader: &Loader, message: String| {
            let message = loader.problem(message);
            rquickjs::Error::new_loading_message(name, message)
        };
        let source = std::fs::read_to_string(&path)
            .map_err(|e| fail(self, format!("{shown}: cannot read: {e}")))?;
        if path.extension().is_some_and(|e| e == "json") {
            if let Err(error) = serde_json::from_str::<serde_json::Value>(&source) {
                return Err(fail(self, format!("{shown}: invalid JSON: {error}")));
            }
            return Module::declare(ctx.clone(), name, format!("export default {source};"));
        }
        if path.extension().is_some_and(|e| e == "cjs") {
            return Err(fail(
                self,
                format!(
                    "{shown}: CommonJS modules are not supported; import the package's ES module build"
                ),
            ));
        }
        let options = self
            .state
            .borrow()
            .project
            .as_ref()
            .map(|p| CompileOptions {
                jsx: p.tsconfig.jsx.clone(),
                async_context: p.config.compatibility.enabled(Feature::AsyncLocalStorage),
            })
            .unwrap_or_default();
        let compiled =
            compile::compile(&path, &shown, &source, &options).map_err(|m| fail(self, m))?;
        if let Some(engine) = engine() {
            engine
                .source_maps
                .borrow_mut()
                .insert(name, &shown, compiled.map, compiled.insertions);
        }
        Module::declare(ctx.clone(), name, compiled.code).map_err(|error| {
            let detail = match error {
                rquickjs::Error::Exception => crate::natives::errors::caught(ctx),
                other => other.to_string(),
            };
            fail(self, format!("{shown}: {detail}"))
        })
    }
}
