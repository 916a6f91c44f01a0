//! Loading the project's code into a fresh context: the prelude (the Web APIs and the Durable
//! Objects API), the `env`, then the main module and what it imports.

use std::collections::HashMap;
use std::rc::Rc;

use dormouse_sdk::Env;
use rquickjs::{Class, Ctx, Function, Object, Persistent, Promise, Value};

use super::state::{EngineState, Generation, Owner};
use crate::config::{Feature, Var};
use crate::error::{Result, WorkersError};
use crate::modules::builtin::MODULE_TABLE;
use crate::natives::{self, errors, namespace::NamespaceHandle};
use crate::project::Project;

/// The prelude's files, in the order they build on each other.
const PRELUDE: &[(&str, &str)] = &[
    ("dormouse:prelude/core.js", include_str!("../js/core.js")),
    ("dormouse:prelude/url.js", include_str!("../js/url.js")),
    (
        "dormouse:prelude/streams.js",
        include_str!("../js/streams.js"),
    ),
    ("dormouse:prelude/fetch.js", include_str!("../js/fetch.js")),
    (
        "dormouse:prelude/websocket.js",
        include_str!("../js/websocket.js"),
    ),
    (
        "dormouse:prelude/durable.js",
        include_str!("../js/durable.js"),
    ),
    ("dormouse:prelude/node.js", include_str!("../js/node.js")),
];

/// Loads `project` into a new generation and makes it the current one.
pub(super) fn load(engine: &Rc<EngineState>, project: &Project, env: &Env) -> Result<()> {
    let context = rquickjs::Context::full(&engine.runtime)
        .map_err(|e| WorkersError::Engine(format!("cannot create a context: {e}")))?;
    let id = engine.next_id();
    engine.loader.begin(project);
    let loaded = context.with(|ctx| -> Result<Persistent<Object<'static>>> {
        let internal = prelude(&ctx, project).map_err(WorkersError::Load)?;
        create_env(&ctx, &internal, project, env).map_err(WorkersError::Load)?;
        Ok(Persistent::save(&ctx, internal))
    });
    let internal = match loaded {
        Ok(internal) => internal,
        Err(error) => {
            engine.loader.end();
            return Err(error);
        }
    };
    let generation = Rc::new(Generation {
        id,
        internal,
        backends: project
            .config
            .bindings
            .iter()
            .map(|b| (b.class_name.clone(), project.config.backend(&b.class_name)))
            .collect::<HashMap<_, _>>(),
        context,
    });
    // The main module runs on the Worker's behalf (its top level may start timers or fetches).
    let evaluated = engine.enter(Owner::Worker(id), &generation, |ctx| {
        main_module(ctx, &generation, project)
    });
    let problem = engine.loader.end();
    if let Err(message) = evaluated {
        return Err(WorkersError::Load(problem.unwrap_or(message)));
    }
    engine.set_current(generation);
    Ok(())
}

/// Evaluates the prelude; returns its internal object.
fn prelude<'js>(ctx: &Ctx<'js>, project: &Project) -> std::result::Result<Object<'js>, String> {
    let run = || -> rquickjs::Result<Object<'js>> {
        let native = Object::new(ctx.clone())?;
        natives::install(ctx, &native)?;
        let internal = Object::new(ctx.clone())?;
        let features = Object::new(ctx.clone())?;
        let compatibility = &project.config.compatibility;
        features.set("nodeCompat", compatibility.enabled(Feature::NodeCompat))?;
        features.set(
            "asyncLocalStorage",
            compatibility.enabled(Feature::AsyncLocalStorage),
        )?;
        features.set(
            "standardBinaryType",
            compatibility.enabled(Feature::StandardBinaryType),
        )?;
        features.set(
            "deleteAllDeletesAlarm",
            compatibility.enabled(Feature::DeleteAllDeletesAlarm),
        )?;
        internal.set("features", features)?;
        for (name, source) in PRELUDE {
            let options = {
                let mut options = rquickjs::context::EvalOptions::default();
                options.global = true;
                options.strict = true;
                options.filename = Some((*name).to_owned());
                options
            };
            let file: Function<'js> = ctx.eval_with_options(*source, options)?;
            file.call::<_, ()>((native.clone(), internal.clone()))?;
        }
        // The built-in modules read their exports from here (`modules::builtin`).
        let table: Object<'js> = internal.get("modules")?;
        let define: Function<'js> = ctx.eval(
            "(key, table) => Object.defineProperty(globalThis, Symbol.for(key), { value: table })",
        )?;
        define.call::<_, ()>((MODULE_TABLE, table))?;
        Ok(internal)
    };
    run().map_err(|_| format!("the prelude failed to load: {}", errors::caught(ctx)))
}

/// Fills the prelude's `env` object: namespaces, `vars` and `.dev.vars`.
fn create_env<'js>(
    ctx: &Ctx<'js>,
    internal: &Object<'js>,
    project: &Project,
    env: &Env,
) -> std::result::Result<(), String> {
    let run = || -> rquickjs::Result<()> {
        let entries = rquickjs::Array::new(ctx.clone())?;
        let mut index = 0;
        for binding in &project.config.bindings {
            let Some(host) = env.namespace_host(&binding.name) else {
                continue;
            };
            let handle = Class::instance(ctx.clone(), NamespaceHandle::new(host))?;
            let entry = rquickjs::Array::new(ctx.clone())?;
            entry.set(0, binding.name.as_str())?;
            entry.set(1, "namespace")?;
            entry.set(2, handle)?;
            entries.set(index, entry)?;
            index += 1;
        }
        for (name, var) in &project.config.vars {
            let entry = rquickjs::Array::new(ctx.clone())?;
            entry.set(0, name.as_str())?;
            match var {
                Var::Text(text) => {
                    entry.set(1, "text")?;
                    entry.set(2, text.as_str())?;
                }
                Var::Json(json) => {
                    entry.set(1, "json")?;
                    entry.set(2, json.to_string())?;
                }
            }
            entries.set(index, entry)?;
            index += 1;
        }
        let create: Function<'js> = internal.get("createEnv")?;
        create.call::<_, ()>((entries,))
    };
    run().map_err(|_| format!("cannot build env: {}", errors::caught(ctx)))
}

/// Imports and evaluates the main module, then checks that every bound class is exported.
fn main_module(
    ctx: &Ctx<'_>,
    generation: &Generation,
    project: &Project,
) -> std::result::Result<(), String> {
    let main = project.config.main.to_string_lossy().into_owned();
    let promise: Promise<'_> = match rquickjs::Module::import(ctx, main.as_str()) {
        Ok(promise) => promise,
        Err(_) => return Err(errors::caught(ctx)),
    };
    while ctx.execute_pending_job() {}
    let namespace: Value<'_> = match promise.result::<Value<'_>>() {
        Some(Ok(namespace)) => namespace,
        Some(Err(_)) => return Err(errors::caught(ctx)),
        None => {
            return Err(format!(
                "{}: the module's top-level await did not finish while loading",
                project.shown(&project.config.main)
            ));
        }
    };
    let internal = generation
        .internal
        .clone()
        .restore(ctx)
        .map_err(|e| e.to_string())?;
    let set_main: Function<'_> = internal.get("setMain").map_err(|e| e.to_string())?;
    set_main
        .call::<_, ()>((namespace,))
        .map_err(|_| errors::caught(ctx))?;
    let exported: Function<'_> = internal.get("exportedClass").map_err(|e| e.to_string())?;
    for binding in &project.config.bindings {
        let class: Value<'_> = exported
            .call((binding.class_name.as_str(),))
            .map_err(|_| errors::caught(ctx))?;
        if class.is_null() {
            return Err(WorkersError::MissingClass {
                binding: binding.name.clone(),
                class: binding.class_name.clone(),
            }
            .to_string());
        }
    }
    Ok(())
}
