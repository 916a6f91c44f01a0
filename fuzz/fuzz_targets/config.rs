//! The configuration file parser on arbitrary text: errors, never panics.

#![no_main]

use dormouse_config::ConfigFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = ConfigFile::parse(&text) {
        for migration in &config.migrations {
            let _ = migration.created().count();
        }
    }
});
