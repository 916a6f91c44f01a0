//! The Dormouse configuration file, parsed: class migrations and variables, in wrangler's shape.
//!
//! A crate of its own with no I/O beyond reading the file, so that its parser is easy to fuzz.
//!
//! # Layout
//! - [`file`] — [`ConfigFile`]: the TOML file.
//! - [`migration`] — [`Migration`]: one migration step, with wrangler's meaning.

pub mod file;
pub mod migration;

pub use file::ConfigFile;
pub use migration::{Migration, Rename};
