//! Turning the paths a user dropped or named into (file, key) pairs.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// One file to upload and the key it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadItem {
    /// The local file.
    pub path: PathBuf,
    /// The destination key.
    pub key: String,
    /// Its size when planned.
    pub size: u64,
}

/// Plans the upload of `paths` under `dest`:
/// - a file goes to `dest` + its name, or to `dest` itself when `dest` is a key (no trailing
///   `/`) and it is the only path;
/// - a folder goes to `dest` + its name + `/`, recursively, keeping its structure.
///
/// Paths that cannot be read are returned as errors beside the plan, so one bad path never
/// stops the others.
pub fn plan_upload(paths: &[PathBuf], dest: &str) -> (Vec<UploadItem>, Vec<Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let as_prefix = dest.is_empty() || dest.ends_with('/') || paths.len() > 1;
    let prefix = if as_prefix || dest.is_empty() {
        dest.to_owned()
    } else {
        String::new()
    };
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(source) => {
                errors.push(Error::Local {
                    what: "cannot read",
                    path: path.clone(),
                    source,
                });
                continue;
            }
        };
        let name = match file_name(path) {
            Ok(n) => n,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if meta.is_dir() {
            walk(path, &format!("{prefix}{name}/"), &mut items, &mut errors);
        } else {
            let key = if as_prefix {
                format!("{prefix}{name}")
            } else {
                dest.to_owned()
            };
            items.push(UploadItem {
                path: path.clone(),
                key,
                size: meta.len(),
            });
        }
    }
    (items, errors)
}

fn walk(dir: &Path, prefix: &str, items: &mut Vec<UploadItem>, errors: &mut Vec<Error>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            return errors.push(Error::Local {
                what: "cannot read folder",
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut entries: Vec<_> = entries
        .filter_map(|e| {
            e.map_err(|source| {
                errors.push(Error::Local {
                    what: "cannot read folder",
                    path: dir.to_owned(),
                    source,
                })
            })
            .ok()
        })
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = match file_name(&path) {
            Ok(n) => n,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // Symlinked folders are not followed: they can loop, and their files live elsewhere.
        let is_link_dir = entry.file_type().is_ok_and(|t| t.is_symlink()) && path.is_dir();
        match std::fs::metadata(&path) {
            Err(source) => errors.push(Error::Local {
                what: "cannot read",
                path,
                source,
            }),
            Ok(_) if is_link_dir => {
                tracing::info!(path = %path.display(), "not following symlinked folder")
            }
            Ok(m) if m.is_dir() => walk(&path, &format!("{prefix}{name}/"), items, errors),
            Ok(m) => items.push(UploadItem {
                path,
                key: format!("{prefix}{name}"),
                size: m.len(),
            }),
        }
    }
}

fn file_name(path: &Path) -> Result<String, Error> {
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_owned()))
        .or_else(|| path.file_name().map(|n| n.to_owned()));
    let Some(name) = name else {
        return Err(Error::Config(format!(
            "{} has no file name to use as a key",
            path.display()
        )));
    };
    name.into_string().map_err(|_| {
        Error::Config(format!(
            "{} has a name that is not valid UTF-8; rename it to upload it",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/summer")).unwrap();
        std::fs::write(root.join("a b.jpg"), b"1").unwrap();
        std::fs::write(root.join("2024/summer/c+d.jpg"), b"22").unwrap();
        let single = dir.path().join("x.txt");
        std::fs::write(&single, b"333").unwrap();
        let missing = dir.path().join("missing");

        let (items, errors) = plan_upload(&[root.clone(), single.clone(), missing], "in/");
        let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "in/photos/2024/summer/c+d.jpg",
                "in/photos/a b.jpg",
                "in/x.txt"
            ]
        );
        assert_eq!(items[0].size, 2);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("missing"), "{}", errors[0]);

        let (items, _) = plan_upload(std::slice::from_ref(&single), "renamed.txt");
        assert_eq!(items[0].key, "renamed.txt");
        let (items, _) = plan_upload(&[single], "");
        assert_eq!(items[0].key, "x.txt");
    }
}
