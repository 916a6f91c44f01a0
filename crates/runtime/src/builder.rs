//! [`RuntimeBuilder`]: registers classes, opens the data directory, and builds a [`Runtime`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use dormouse_holder::Drivers;
use dormouse_sdk::host::{EnvHost, NamespaceHost};
use dormouse_sdk::{DurableObject, Env, Guest, State};
use dormouse_storage::{Catalog, Durability, Migration};

use crate::alarms::AlarmScheduler;
use crate::config::RuntimeConfig;
use crate::error::{Result, RuntimeError};
use crate::guest::GuestClass;
use crate::namespace::{ClassSpec, Namespace, NamespaceStorage};
use crate::placement::Placement;
use crate::registry::{CellKey, Registry};
use crate::runtime::{Runtime, Shared};

/// The `EnvHost` behind every [`Env`]: weak, because the runtime owns the environment.
struct RuntimeEnv(Weak<Shared>);

impl EnvHost for RuntimeEnv {
    fn namespace(&self, binding: &str) -> Option<Arc<dyn NamespaceHost>> {
        let shared = self.0.upgrade()?;
        shared
            .namespace(binding)
            .map(|ns| ns.clone() as Arc<dyn NamespaceHost>)
    }

    fn var(&self, name: &str) -> Option<String> {
        self.0.upgrade()?.vars.get(name).cloned()
    }
}

/// Where and how a runtime keeps durable state.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// The data directory: the catalog (`dormouse.sqlite`) and one database per object.
    pub data_dir: PathBuf,
    /// When commits are durable.
    pub durability: Durability,
    /// Class migrations, applied once each, in order.
    pub migrations: Vec<Migration>,
}

/// Registers Durable Object classes and builds a [`Runtime`].
#[derive(Default)]
pub struct RuntimeBuilder {
    config: RuntimeConfig,
    classes: Vec<ClassSpec>,
    vars: HashMap<String, String>,
    storage: Option<StorageOptions>,
    placement: Option<Arc<dyn Placement>>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bindings: Vec<&str> = self.classes.iter().map(|c| c.binding.as_str()).collect();
        f.debug_struct("RuntimeBuilder")
            .field("config", &self.config)
            .field("bindings", &bindings)
            .finish()
    }
}

impl RuntimeBuilder {
    /// Makes the runtime one node of a cluster: `placement` decides which node runs each object,
    /// and every commit is handed to it before the turn's output leaves.
    pub fn placement(mut self, placement: Arc<dyn Placement>) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    /// Binds the class `T` as `binding`. Its ids are keyed by the class name, so they stay valid
    /// across restarts (and a renamed binding keeps its objects).
    pub fn durable_object<T: DurableObject>(self, binding: &str) -> Self {
        let class = short_type_name::<T>();
        self.guest(binding, &class, &class, |state, env| {
            Box::new(T::new(state, env))
        })
    }

    /// Binds any [`Guest`] implementation as `binding`, with explicit class name and id key.
    pub fn guest(
        self,
        binding: &str,
        class: &str,
        unique_key: &str,
        factory: impl Fn(State, Env) -> Box<dyn Guest> + Send + Sync + 'static,
    ) -> Self {
        self.guest_class(
            GuestClass::new(binding, class, move |state, env| Ok(factory(state, env)))
                .unique_key(unique_key),
        )
    }

    /// Binds a guest class, with where its objects run and how its sockets close.
    pub fn guest_class(mut self, class: GuestClass) -> Self {
        self.classes.push(ClassSpec {
            binding: class.binding,
            class: class.class,
            unique_key: class.unique_key,
            factory: class.factory,
            executor: class.executor,
            close_reply: class.close_reply,
            storage: None,
        });
        self
    }

    /// Gives objects durable storage in a data directory, and applies class migrations there.
    /// Without it, `state.storage()` fails.
    pub fn storage(mut self, options: StorageOptions) -> Self {
        self.storage = Some(options);
        self
    }

    /// A plain-text variable, visible as `env.var(name)`.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Builds the runtime.
    pub fn build(self) -> Result<Runtime> {
        let mut seen = std::collections::HashSet::new();
        for class in &self.classes {
            if !seen.insert(class.binding.clone()) {
                return Err(RuntimeError::DuplicateBinding(class.binding.clone()));
            }
        }
        let (catalog, alarms) = match &self.storage {
            Some(options) => {
                let catalog = Arc::new(Catalog::open(&options.data_dir, options.durability)?);
                let applied = catalog.apply(&options.migrations)?;
                if !applied.is_empty() {
                    tracing::info!(?applied, "applied migrations");
                }
                (
                    Some(catalog.clone()),
                    Arc::new(AlarmScheduler::new(Some(catalog))),
                )
            }
            None => (None, Arc::new(AlarmScheduler::new(None))),
        };
        let mut classes = self.classes;
        if let (Some(catalog), Some(options)) = (&catalog, &self.storage) {
            for spec in &mut classes {
                let info = catalog.bind(&spec.class)?;
                spec.unique_key = info.id_key;
                spec.storage = Some(NamespaceStorage {
                    dir: info.dir,
                    durability: options.durability,
                    alarms: alarms.clone(),
                    replicated: self.placement.is_some(),
                });
            }
            let bound: Vec<&str> = classes.iter().map(|c| c.class.as_str()).collect();
            for class in catalog.unbound(&bound)? {
                tracing::warn!(%class, "a class with stored data is not bound; its data is kept (delete it with a deleted_classes migration)");
            }
        }
        let config = Arc::new(self.config);
        let drivers = Arc::new(Drivers::new());
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| Shared {
            config: config.clone(),
            registry: Registry::new(self.placement.clone()),
            namespaces: classes
                .into_iter()
                .enumerate()
                .map(|(index, spec)| {
                    Arc::new(Namespace::new(
                        index as u32,
                        spec,
                        config.clone(),
                        drivers.clone(),
                        weak.clone(),
                    ))
                })
                .collect(),
            env: Env::from_host(Arc::new(RuntimeEnv(weak.clone()))),
            vars: self.vars,
            alarms: alarms.clone(),
            memory_to_return: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            placement: self.placement,
        });
        alarms.attach(Arc::downgrade(&shared));
        if let Some(catalog) = &catalog {
            let pending = catalog
                .alarms()?
                .into_iter()
                .filter_map(|(id_key, raw, at)| {
                    let namespace = shared.namespaces.iter().find(|ns| ns.id_key == id_key)?;
                    Some((
                        CellKey {
                            namespace: namespace.index,
                            raw,
                        },
                        at,
                    ))
                });
            alarms.load(pending);
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            alarms.ensure_started();
            tokio::spawn(crate::liveness::run(Arc::downgrade(&shared)));
        }
        Ok(Runtime { shared })
    }
}

/// The last path segment of a type's name, without generics: the class name users wrote.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl DurableObject for Plain {
        fn new(_: State, _: Env) -> Self {
            Plain
        }
    }

    #[test]
    fn class_names_are_short() {
        assert_eq!(short_type_name::<Plain>(), "Plain");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec");
    }

    #[test]
    fn bindings_are_unique() {
        let error = Runtime::builder()
            .durable_object::<Plain>("A")
            .durable_object::<Plain>("A")
            .build()
            .unwrap_err();
        assert!(matches!(error, RuntimeError::DuplicateBinding(binding) if binding == "A"));
    }
}
