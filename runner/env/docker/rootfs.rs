//! The files of the offline lab image: the host's `node`, the shared libraries it needs (read from
//! the ELF binary, not guessed), a non-root user, `/tmp`, and the lab app.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use goblin::elf::Elf;

/// Where `node` goes in the image.
pub const NODE_IN_IMAGE: &str = "/usr/local/bin/node";
/// Where the app's source goes in the image.
pub const APP_IN_IMAGE: &str = "/app";
/// uid/gid of the non-root user the app runs as (the same as the `node` user of the official images).
pub const APP_UID: u64 = 1000;

/// A host file and where it goes in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    pub host: PathBuf,
    pub image: PathBuf,
    pub mode: u32,
}

/// `node` and every shared library it loads (recursively), plus the dynamic loader.
pub fn node_runtime(node: &Path) -> Result<Vec<ImageFile>> {
    let mut files = vec![ImageFile {
        host: node.to_path_buf(),
        image: PathBuf::from(NODE_IN_IMAGE),
        mode: 0o755,
    }];
    let bytes = fs::read(node).with_context(|| format!("Failed to read {}", node.display()))?;
    let elf = Elf::parse(&bytes)
        .with_context(|| format!("{} is not an ELF executable", node.display()))?;
    let machine = elf.header.e_machine;
    let search = SearchPath::for_binary(&elf, node);
    if let Some(interp) = elf.interpreter {
        files.push(ImageFile {
            host: fs::canonicalize(interp)
                .with_context(|| format!("the dynamic loader {interp} named by node is missing"))?,
            image: PathBuf::from(interp),
            mode: 0o755,
        });
    }
    // Breadth-first over DT_NEEDED, keyed by the name the loader will look for.
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut queue: Vec<String> = elf.libraries.iter().map(|s| s.to_string()).collect();
    drop(elf);
    drop(bytes);
    while let Some(name) = queue.pop() {
        if found.contains_key(&name) {
            continue;
        }
        let path = search.resolve(&name, machine).with_context(|| {
            format!(
                "node needs the shared library {name}, which was not found in {:?}",
                search.dirs
            )
        })?;
        let lib_bytes =
            fs::read(&path).with_context(|| format!("Failed to read {}", path.display()))?;
        let lib = Elf::parse(&lib_bytes)
            .with_context(|| format!("{} is not an ELF library", path.display()))?;
        queue.extend(lib.libraries.iter().map(|s| s.to_string()));
        found.insert(name, path);
    }
    for (_, path) in found {
        files.push(ImageFile {
            host: fs::canonicalize(&path)
                .with_context(|| format!("Failed to resolve {}", path.display()))?,
            // The library keeps its host path (the name the loader searches for) in the image.
            image: path,
            mode: 0o755,
        });
    }
    Ok(files)
}

/// The lab app's files for its image: `files` (relative to `app_dir`: files, or folders taken
/// whole), or everything in `app_dir` but `node_modules` and hidden files when `files` is empty.
pub fn app_files(app_dir: &Path, files: &[String]) -> Result<Vec<ImageFile>> {
    let mut out = Vec::new();
    let mut add = |path: &Path| {
        let relative = path
            .strip_prefix(app_dir)
            .expect("walk stays under app_dir");
        out.push(ImageFile {
            host: path.to_path_buf(),
            image: Path::new(APP_IN_IMAGE).join(relative),
            mode: 0o644,
        });
    };
    if files.is_empty() {
        walk(app_dir, &mut add)?;
    } else {
        for name in files {
            let path = app_dir.join(name);
            if path.is_dir() {
                walk(&path, &mut add)?;
            } else if path.is_file() {
                add(&path);
            } else {
                bail!(
                    "the lab app's `{name}` (app.files in lab.yaml) does not exist in {}",
                    app_dir.display()
                );
            }
        }
    }
    out.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("Failed to list {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if kind.is_dir() {
            if entry.file_name() != "node_modules" {
                walk(&path, visit)?;
            }
        } else if kind.is_file() {
            visit(&path);
        }
    }
    Ok(())
}

/// The dynamic loader's search order on the host: RPATH/RUNPATH of the binary, `/etc/ld.so.conf`,
/// then the default directories.
struct SearchPath {
    dirs: Vec<PathBuf>,
}

impl SearchPath {
    fn for_binary(elf: &Elf, binary: &Path) -> SearchPath {
        let origin = binary.parent().unwrap_or(Path::new("/"));
        let mut dirs: Vec<PathBuf> = elf
            .rpaths
            .iter()
            .chain(elf.runpaths.iter())
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(|s| PathBuf::from(s.replace("$ORIGIN", &origin.to_string_lossy())))
            .collect();
        dirs.extend(ld_so_conf(Path::new("/etc/ld.so.conf"), 0));
        for default in [
            "/lib64",
            "/usr/lib64",
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/lib",
            "/usr/lib",
        ] {
            dirs.push(PathBuf::from(default));
        }
        let mut seen = std::collections::HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        SearchPath { dirs }
    }

    /// The first file called `name` in the search path that is an ELF object for `machine`.
    fn resolve(&self, name: &str, machine: u16) -> Option<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.join(name))
            .find(|candidate| elf_machine(candidate) == Some(machine))
    }
}

/// The ELF machine of the file at `path`, reading only its header.
fn elf_machine(path: &Path) -> Option<u16> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut file = fs::File::open(path).ok()?;
    file.read_exact(&mut head).ok()?;
    Elf::parse_header(&head).ok().map(|h| h.e_machine)
}

/// Directories listed in an ld.so.conf file, following `include` lines (globs of the form `dir/*.conf`).
fn ld_so_conf(path: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            if depth > 4 {
                continue;
            }
            let pattern = Path::new(pattern);
            let (dir, suffix) = match pattern.file_name().and_then(|f| f.to_str()) {
                Some(name) if name.starts_with('*') => (
                    pattern.parent().unwrap_or(Path::new("/")),
                    name[1..].to_string(),
                ),
                _ => {
                    dirs.extend(ld_so_conf(pattern, depth + 1));
                    continue;
                }
            };
            let mut confs: Vec<PathBuf> = fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(&suffix))
                .collect();
            confs.sort();
            for conf in confs {
                dirs.extend(ld_so_conf(&conf, depth + 1));
            }
        } else {
            dirs.push(PathBuf::from(line));
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_node_and_its_libraries() {
        let node =
            crate::env::node::find_node().expect("the tests need `node` (20 or newer) on the PATH");
        let files = node_runtime(&node).unwrap();
        assert_eq!(files[0].image, Path::new(NODE_IN_IMAGE));
        // A dynamically linked node needs at least libc.
        if files.len() > 1 {
            assert!(
                files
                    .iter()
                    .any(|f| f.image.to_string_lossy().contains("libc.so")),
                "{files:?}"
            );
        }
    }
}
