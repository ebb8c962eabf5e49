//! The files of the offline images: the host's `node` or the host files a lab names, the shared
//! libraries they need (read from the ELF files, not guessed), a non-root user, `/tmp`, and the
//! app's files.

use std::collections::{BTreeMap, BTreeSet};
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
    files.extend(shared_libraries(&[node.to_path_buf()], &BTreeSet::new())?);
    Ok(files)
}

/// The host files and folders an offline image names (`image: offline: host:`), each at its own
/// path in the image: folders whole, without `__pycache__` and the `exclude`d paths; then every
/// shared library (and dynamic loader) their ELF files load.
pub fn host_runtime(host: &[String], exclude: &[String]) -> Result<Vec<ImageFile>> {
    let excluded = |path: &Path| exclude.iter().any(|e| path.starts_with(e));
    let mut files: Vec<ImageFile> = Vec::new();
    for name in host {
        let path = Path::new(name);
        if !path.is_absolute() {
            bail!("the host path `{name}` (image: offline: host:) is not absolute");
        }
        let meta = fs::metadata(path).with_context(|| {
            format!("the host path {name} (image: offline: host: in lab.yaml) does not exist on this machine")
        })?;
        if meta.is_dir() {
            walk_runtime(path, &excluded, &mut files)?;
        } else if !excluded(path) {
            files.push(runtime_file(path, &meta));
        }
    }
    let mut seen = BTreeSet::new();
    files.retain(|f| seen.insert(f.image.clone()));
    let taken: BTreeSet<PathBuf> = files.iter().map(|f| f.image.clone()).collect();
    let elves: Vec<PathBuf> = files
        .iter()
        .filter(|f| is_elf(&f.host))
        .map(|f| f.host.clone())
        .collect();
    files.extend(shared_libraries(&elves, &taken)?);
    files.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(files)
}

/// A host file at its own path, readable by all, executable when it is on the host.
fn runtime_file(path: &Path, meta: &fs::Metadata) -> ImageFile {
    use std::os::unix::fs::PermissionsExt;
    let executable = meta.permissions().mode() & 0o111 != 0;
    ImageFile {
        host: path.to_path_buf(),
        image: path.to_path_buf(),
        mode: if executable { 0o755 } else { 0o644 },
    }
}

/// Every file under `dir` (following links to files; links to folders and dangling links are
/// left out), but `__pycache__` folders and excluded paths.
fn walk_runtime(
    dir: &Path,
    excluded: &dyn Fn(&Path) -> bool,
    out: &mut Vec<ImageFile>,
) -> Result<()> {
    if excluded(dir) {
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("Failed to list {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("Failed to list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if excluded(&path) || entry.file_name() == "__pycache__" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk_runtime(&path, excluded, out)?;
        } else if let Ok(meta) = fs::metadata(&path)
            && meta.is_file()
        {
            out.push(runtime_file(&path, &meta));
        }
    }
    Ok(())
}

/// Whether the file starts with the ELF magic.
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The dynamic loaders and every shared library (recursively) the ELF files `elves` load, at the
/// paths the loader finds them; none of the paths in `taken` (already in the image).
fn shared_libraries(elves: &[PathBuf], taken: &BTreeSet<PathBuf>) -> Result<Vec<ImageFile>> {
    let mut files = Vec::new();
    // Keyed by the name the loader looks for.
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut interpreters: BTreeSet<String> = BTreeSet::new();
    for binary in elves {
        let bytes =
            fs::read(binary).with_context(|| format!("Failed to read {}", binary.display()))?;
        let elf = Elf::parse(&bytes)
            .with_context(|| format!("{} is not an ELF file", binary.display()))?;
        let machine = elf.header.e_machine;
        let search = SearchPath::for_binary(&elf, binary);
        if let Some(interp) = elf.interpreter {
            interpreters.insert(interp.to_string());
        }
        let mut queue: Vec<String> = elf.libraries.iter().map(|s| s.to_string()).collect();
        drop(elf);
        drop(bytes);
        while let Some(name) = queue.pop() {
            if found.contains_key(&name) {
                continue;
            }
            let path = search.resolve(&name, machine).with_context(|| {
                format!(
                    "{} needs the shared library {name}, which was not found in {:?} (leave the \
                     file out with `exclude:`, or install the library)",
                    binary.display(),
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
    }
    for interp in interpreters {
        let image = PathBuf::from(&interp);
        if taken.contains(&image) {
            continue;
        }
        files.push(ImageFile {
            host: fs::canonicalize(&interp)
                .with_context(|| format!("the dynamic loader {interp} is missing"))?,
            image,
            mode: 0o755,
        });
    }
    for (_, path) in found {
        if taken.contains(&path) || files.iter().any(|f: &ImageFile| f.image == path) {
            continue;
        }
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

    #[test]
    fn host_runtime_takes_folders_whole_but_caches_and_exclusions_and_adds_libraries() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let lib = root.join("lib");
        fs::create_dir_all(lib.join("__pycache__")).unwrap();
        fs::create_dir_all(lib.join("test")).unwrap();
        fs::create_dir_all(lib.join("pkg")).unwrap();
        fs::write(lib.join("os.py"), "import sys\n").unwrap();
        fs::write(lib.join("pkg/mod.py"), "x = 1\n").unwrap();
        fs::write(lib.join("__pycache__/os.cpython-311.pyc"), "cache").unwrap();
        fs::write(lib.join("test/test_os.py"), "test").unwrap();
        std::os::unix::fs::symlink(lib.join("os.py"), lib.join("linked.py")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), lib.join("dangling.py")).unwrap();
        let node =
            crate::env::node::find_node().expect("the tests need `node` (20 or newer) on the PATH");
        let host = vec![
            node.to_string_lossy().into_owned(),
            lib.to_string_lossy().into_owned(),
        ];
        let exclude = vec![lib.join("test").to_string_lossy().into_owned()];
        let files = host_runtime(&host, &exclude).unwrap();
        let images: Vec<PathBuf> = files.iter().map(|f| f.image.clone()).collect();
        for wanted in ["os.py", "pkg/mod.py", "linked.py"] {
            assert!(
                images.contains(&lib.join(wanted)),
                "{wanted} missing: {images:?}"
            );
        }
        for unwanted in [
            "__pycache__/os.cpython-311.pyc",
            "test/test_os.py",
            "dangling.py",
        ] {
            assert!(
                !images.contains(&lib.join(unwanted)),
                "{unwanted} taken: {images:?}"
            );
        }
        // The binary at its own path, executable; the libraries node loads beside it.
        let binary = files.iter().find(|f| f.image == node).expect("node itself");
        assert_eq!(binary.mode, 0o755);
        let libraries: Vec<PathBuf> = node_runtime(&node).unwrap()[1..]
            .iter()
            .map(|f| f.image.clone())
            .collect();
        for library in &libraries {
            assert!(images.contains(library), "{library:?} missing: {images:?}");
        }
        assert_eq!(files.len(), 4 + libraries.len(), "{images:?}");
    }

    #[test]
    fn a_missing_host_path_is_an_error_naming_it() {
        let err = host_runtime(&["/no/such/runtime".to_string()], &[]).unwrap_err();
        assert!(format!("{err:#}").contains("/no/such/runtime"), "{err:#}");
    }
}
