//! The keepalived.conf importer (`havipctl import-keepalived`): parse, translate and render
//! whatever text the fuzzer makes. It must never panic; an input it cannot import is a
//! `ParseError` with a message.
//!
//! Included files come from memory, never from the disk, so a run depends on its input
//! alone: the input is split at NUL bytes; the first part is
//! /etc/keepalived/keepalived.conf, and each later part is a file whose first line is its
//! path (relative to /etc/keepalived unless absolute) and whose other lines are its text.

#![no_main]

use std::path::{Path, PathBuf};

use havipctl::keepalived::{self, MemLoader, Options};
use libfuzzer_sys::fuzz_target;

const MAIN: &str = "/etc/keepalived/keepalived.conf";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let main = parts.next().unwrap_or_default();
    let mut loader = MemLoader::new();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        loader
            .files
            .insert(Path::new("/etc/keepalived").join(name), body.to_owned());
    }
    // Scripts named without a path are looked up as programs; a fixed list keeps the
    // lookup deterministic.
    for program in ["pidof", "killall", "curl"] {
        loader
            .programs
            .insert(program.to_owned(), PathBuf::from("/usr/bin").join(program));
    }

    import(main, &loader, Some("main"));
    // Without a config id a conditional line is an error of its own; only inputs that
    // have one can take that path, so only they pay for a second parse.
    if main.contains('@') || loader.files.values().any(|f| f.contains('@')) {
        import(main, &loader, None);
    }
});

fn import(main: &str, loader: &MemLoader, config_id: Option<&str>) {
    let options = Options {
        config_id: config_id.map(str::to_owned),
    };
    match keepalived::parse(Path::new(MAIN), main, loader, &options) {
        Ok(import) => {
            for finding in &import.findings {
                assert!(!finding.to_string().is_empty());
            }
            // What import-keepalived prints; a render error is allowed, a panic is not.
            let _ = keepalived::to_yaml(&import, "keepalived.conf");
            let _ = keepalived::to_json(&import);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
