//! Where included files come from: the file system for havipctl, memory for tests and
//! fuzzing. The parser sees files only through this trait, so it stays pure.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The largest file the importer reads. keepalived configurations are kilobytes; the bound
/// keeps `include /dev/zero`, or a glob that matches a log file, from reading until memory
/// runs out.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// Reads files, lists folders (for include globs) and finds programs named without a path
/// (keepalived runs `script "pidof haproxy"` through PATH; havipd wants absolute paths).
pub trait Loader {
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The names of the entries of a folder, in any order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The absolute path of a program named without one, if it can be found.
    fn find_program(&self, _name: &str) -> Option<PathBuf> {
        None
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

/// Where keepalived's scripts are looked up; a fixed list rather than havipctl's own PATH,
/// so that the same file imports the same way whoever runs the import.
const PROGRAM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

impl Loader for FsLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        let mut bytes = Vec::new();
        // One byte past the bound tells a file of exactly MAX_FILE_BYTES from a longer one.
        std::fs::File::open(path)?
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(too_large());
        }
        String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not UTF-8 text, so not a keepalived configuration",
            )
        })
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        PROGRAM_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|path| path.is_file())
    }
}

/// Why a file over [`MAX_FILE_BYTES`] is not read.
pub(crate) fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "larger than {} MiB, and a keepalived configuration is a few kilobytes: is it the \
             right file?",
            MAX_FILE_BYTES >> 20
        ),
    )
}

/// Files held in memory, by absolute path; folders are implied by the paths.
#[derive(Debug, Clone, Default)]
pub struct MemLoader {
    pub files: BTreeMap<PathBuf, String>,
    /// Programs `find_program` knows, by name.
    pub programs: BTreeMap<String, PathBuf>,
}

impl MemLoader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, path: &str, text: &str) -> Self {
        self.files.insert(PathBuf::from(path), text.to_owned());
        self
    }
}

impl Loader for MemLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|path| {
                let rest = path.strip_prefix(dir).ok()?;
                let first = rest.components().next()?;
                Some(first.as_os_str().to_string_lossy().into_owned())
            })
            .collect();
        names.dedup();
        if names.is_empty() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(names)
    }

    fn find_program(&self, name: &str) -> Option<PathBuf> {
        self.programs.get(name).cloned()
    }
}
