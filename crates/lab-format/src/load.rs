//! Loading a lab folder: `lab.yaml` and the part files it names, with precise errors.

use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::model::{EnvironmentSpec, LabManifest, PartFile, PartRef, Step};
use super::yaml;

/// A loaded lab: the manifest, its parts, and the source text of each file (kept so later checks can
/// point at lines).
#[derive(Debug, Clone)]
pub struct Lab {
    pub dir: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest_text: String,
    pub manifest: LabManifest,
    pub parts: Vec<Part>,
}

/// One part with its file.
#[derive(Debug, Clone)]
pub struct Part {
    pub reference: PartRef,
    pub path: PathBuf,
    pub text: String,
    pub file: PartFile,
}

impl Part {
    pub fn id(&self) -> &str {
        &self.reference.id
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.file.steps.iter().find(|s| s.id == id)
    }

    /// Line (1-based) where the step with `id` starts in the part file.
    pub fn step_line(&self, id: &str) -> usize {
        self.file
            .steps
            .iter()
            .position(|s| s.id == id)
            .and_then(|i| self.positions().get(&format!("steps[{i}]")))
            .map_or(1, |(line, _)| line)
    }

    /// Where each field of the part file is (from the YAML parser's spans).
    pub fn positions(&self) -> yaml::Positions {
        yaml::Positions::of(&self.text)
    }
}

impl Lab {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn part(&self, id: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.id() == id)
    }

    pub fn environment(&self, part: &Part) -> &EnvironmentSpec {
        // load() has checked that every part names a defined environment.
        &self.manifest.environments[&part.reference.environment]
    }

    /// The lab app's source folder.
    pub fn app_dir(&self) -> PathBuf {
        self.dir.join(&self.manifest.app.source)
    }

    /// Resolves part names as a user types them: `part2`, `2`, or all parts when none are given.
    pub fn select_parts(&self, wanted: &[String]) -> anyhow::Result<Vec<&Part>> {
        if wanted.is_empty() {
            return Ok(self.parts.iter().collect());
        }
        wanted
            .iter()
            .map(|w| {
                self.parts
                    .iter()
                    .find(|p| p.id() == w || p.id() == format!("part{w}"))
                    .ok_or_else(|| {
                        let known: Vec<&str> = self.parts.iter().map(|p| p.id()).collect();
                        anyhow::anyhow!(
                            "there is no part `{w}` in lab `{}`; its parts are: {}",
                            self.id(),
                            known.join(", ")
                        )
                    })
            })
            .collect()
    }
}

/// Everything that can go wrong while loading, each with a location.
pub type LoadErrors = Vec<Diagnostic>;

/// Reads `dir/lab.yaml` and every part it lists. Structural problems (missing files, unknown
/// environments, duplicate ids) are reported together; a YAML error in one part does not hide another's.
/// The lab format this lab-runner reads (`format:` in lab.yaml).
pub const FORMAT: u32 = 1;

/// `format:` is read before anything else: a lab written for a newer format may use fields this
/// version does not know, and "unknown field" would be the wrong diagnosis.
fn check_format(text: &str, path: &Path) -> Result<(), Diagnostic> {
    #[derive(serde::Deserialize)]
    struct FormatOnly {
        #[serde(default)]
        format: Option<serde_json::Value>,
    }
    let read = yaml::parse::<FormatOnly>(text, path).map_err(|d| *d)?;
    let at = yaml::Positions::of(text).get("format").unwrap_or((1, 1));
    let problem = |message: String| Err(Diagnostic::new(path, at.0, at.1, message));
    match read.format {
        None => problem(format!(
            "lab.yaml does not say which lab format it is written in: add `format: {FORMAT}` at the top"
        )),
        Some(v) if v.as_u64() == Some(u64::from(FORMAT)) => Ok(()),
        Some(v) => match v.as_u64() {
            Some(n) if n > u64::from(FORMAT) => problem(format!(
                "this lab is written in lab format {n}, and this lab-runner reads format {FORMAT}: \
                 update lab-runner (or use a version of the lab written for format {FORMAT})"
            )),
            _ => problem(format!(
                "`format: {v}` is not a lab format this lab-runner knows; write `format: {FORMAT}`"
            )),
        },
    }
}

pub fn load(dir: &Path) -> Result<Lab, LoadErrors> {
    let manifest_path = dir.join("lab.yaml");
    let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|e| {
        vec![Diagnostic::new(
            &manifest_path,
            1,
            1,
            format!("cannot read the lab manifest: {e}; a lab folder must hold lab.yaml"),
        )]
    })?;
    check_format(&manifest_text, &manifest_path).map_err(|d| vec![d])?;
    let manifest: LabManifest =
        yaml::parse(&manifest_text, &manifest_path).map_err(|d| vec![*d])?;

    let mut errors = Vec::new();
    let mut parts = Vec::new();
    let positions = yaml::Positions::of(&manifest_text);
    for (index, reference) in manifest.parts.iter().enumerate() {
        let ref_line = || positions.get(&format!("parts[{index}]")).unwrap_or((1, 1));
        if !manifest.environments.contains_key(&reference.environment) {
            let (line, col) = positions
                .get(&format!("parts[{index}].environment"))
                .unwrap_or_else(ref_line);
            let known: Vec<&String> = manifest.environments.keys().collect();
            errors.push(Diagnostic::new(
                &manifest_path,
                line,
                col,
                format!(
                    "parts[{index}] ({}) names environment `{}`, which is not defined; defined: {known:?}",
                    reference.id, reference.environment
                ),
            ));
        }
        if manifest.parts[..index].iter().any(|p| p.id == reference.id) {
            let (line, col) = ref_line();
            errors.push(Diagnostic::new(
                &manifest_path,
                line,
                col,
                format!("part id `{}` is used twice", reference.id),
            ));
        }
        let path = dir.join(&reference.file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                let (line, col) = ref_line();
                errors.push(Diagnostic::new(
                    &manifest_path,
                    line,
                    col,
                    format!(
                        "part `{}` names file `{}`, which cannot be read: {e}",
                        reference.id,
                        path.display()
                    ),
                ));
                continue;
            }
        };
        match yaml::parse::<PartFile>(&text, &path) {
            Ok(file) => {
                errors.extend(duplicate_step_ids(&file, &text, &path));
                parts.push(Part {
                    reference: reference.clone(),
                    path,
                    text,
                    file,
                });
            }
            Err(d) => errors.push(*d),
        }
    }
    let app_dir = dir.join(&manifest.app.source);
    if let Some(entry) = &manifest.app.entry
        && !app_dir.join(entry).is_file()
    {
        let (line, col) = positions.get("app.entry").unwrap_or((1, 1));
        errors.push(Diagnostic::new(
            &manifest_path,
            line,
            col,
            format!(
                "the app's entry `{entry}` does not exist under `{}`",
                app_dir.display()
            ),
        ));
    }
    if errors.is_empty() {
        Ok(Lab {
            dir: dir.to_path_buf(),
            manifest_path,
            manifest_text,
            manifest,
            parts,
        })
    } else {
        Err(errors)
    }
}

fn duplicate_step_ids(file: &PartFile, text: &str, path: &Path) -> Vec<Diagnostic> {
    let positions = yaml::Positions::of(text);
    let mut errors = Vec::new();
    for (i, step) in file.steps.iter().enumerate() {
        if file.steps[..i].iter().any(|s| s.id == step.id) {
            let (line, column) = positions.get(&format!("steps[{i}].id")).unwrap_or((1, 1));
            errors.push(
                Diagnostic::new(
                    path,
                    line,
                    column,
                    format!("step id `{}` is used twice in this part; ids must be unique (progress is keyed by them)", step.id),
                )
                .in_step(Some(step.id.clone())),
            );
        }
    }
    errors
}
