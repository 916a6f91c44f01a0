//! Class migrations, with wrangler's meaning.

use serde::Deserialize;

/// One migration step, as in `wrangler.toml`'s `[[migrations]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Unique name of the step; each is applied once, in order.
    pub tag: String,
    /// Classes that come into existence (Dormouse objects always use SQLite storage).
    #[serde(default)]
    pub new_classes: Vec<String>,
    /// Same as `new_classes`.
    #[serde(default)]
    pub new_sqlite_classes: Vec<String>,
    /// Classes renamed: their objects and data move to the new name, and their ids stay valid.
    #[serde(default)]
    pub renamed_classes: Vec<Rename>,
    /// Classes removed with all their objects and data.
    #[serde(default)]
    pub deleted_classes: Vec<String>,
    /// Moving classes between Workers; refused with an explanation (one application per data
    /// directory).
    #[serde(default)]
    pub transferred_classes: Vec<toml_value::Any>,
}

/// Any value, for fields that are read only to be refused with a clear message.
pub mod toml_value {
    /// A value whose content does not matter.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Any;

    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(deserializer).map(|_| Any)
        }
    }
}

/// A class rename.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

impl Migration {
    /// A step named `tag` that does nothing yet.
    pub fn new(tag: impl Into<String>) -> Self {
        Migration {
            tag: tag.into(),
            ..Migration::default()
        }
    }

    /// Adds new classes.
    pub fn new_classes<S: Into<String>>(mut self, classes: impl IntoIterator<Item = S>) -> Self {
        self.new_classes.extend(classes.into_iter().map(Into::into));
        self
    }

    /// Adds a rename.
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.renamed_classes.push(Rename {
            from: from.into(),
            to: to.into(),
        });
        self
    }

    /// Adds deleted classes.
    pub fn delete_classes<S: Into<String>>(mut self, classes: impl IntoIterator<Item = S>) -> Self {
        self.deleted_classes
            .extend(classes.into_iter().map(Into::into));
        self
    }

    /// Every class this step creates.
    pub fn created(&self) -> impl Iterator<Item = &String> {
        self.new_classes.iter().chain(&self.new_sqlite_classes)
    }
}
