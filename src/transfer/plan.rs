//! Turning the paths a user dropped or named into (file, key) pairs.
//!
//! Two steps, so the rules can be tested without a file system: [`scan_inputs`] reads the disk
//! (names, sizes, folder contents) and [`plan_keys`] decides every key from that alone.
//!
//! The rules follow `cp -r`: a folder, or several inputs, go *under* the destination folder
//! whether or not it is written with a trailing `/` (`put DIR s3://b/backup` gives
//! `backup/DIR/…`, `put a b s3://b/x` gives `x/a` and `x/b`); one file sent to a key without `/`
//! becomes that key, unless that key names an existing folder (then `folder/name`). A key is
//! never glued to the destination's name and never lands outside the destination.

use std::collections::HashMap;
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

/// One path the user named, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalInput {
    /// The path as given.
    pub path: PathBuf,
    /// Its own name (the last component), which becomes part of the key.
    pub name: String,
    /// A file or a folder.
    pub kind: InputKind,
}

/// What a [`LocalInput`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// A file of this size.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A folder and the files found below it.
    Folder {
        /// Every file below the folder.
        files: Vec<LocalFile>,
        /// The folders below it (or the folder itself, `[]`) with nothing in them, one name
        /// per level: uploaded as folder markers, so an empty folder is not silently lost.
        empty: Vec<Vec<String>>,
    },
}

/// A file inside a folder input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// The local file.
    pub path: PathBuf,
    /// Its path below the folder input, one name per level.
    pub relative: Vec<String>,
    /// Size in bytes.
    pub size: u64,
}

/// Plans the upload of `paths` under `dest`, a key or a folder prefix (see the module docs);
/// `dest` is taken as a key for a single file unless it is empty or ends with `/`.
///
/// Paths that cannot be read are returned as errors beside the plan, so one bad path never
/// stops the others.
pub fn plan_upload(paths: &[PathBuf], dest: &str) -> (Vec<UploadItem>, Vec<Error>) {
    plan_upload_into(paths, dest, false)
}

/// [`plan_upload`] where the caller knows whether `dest` names an existing folder (then a
/// single file goes inside it, as `cp` does).
pub fn plan_upload_into(
    paths: &[PathBuf],
    dest: &str,
    dest_is_folder: bool,
) -> (Vec<UploadItem>, Vec<Error>) {
    let (inputs, mut errors) = scan_inputs(paths);
    let (items, plan_errors) = plan_keys(dest, dest_is_folder, &inputs);
    errors.extend(plan_errors);
    (items, errors)
}

/// Reads `paths` from disk: names, sizes and the files below folders. Unreadable paths come
/// back as errors, and so do symlinked folders below a folder: they are not followed (they can
/// loop, and their files live elsewhere), but what is not uploaded is never left unsaid. A
/// path named here is followed whatever it is: the user named it.
pub fn scan_inputs(paths: &[PathBuf]) -> (Vec<LocalInput>, Vec<Error>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(source) => {
                errors.push(unreadable(path.clone(), source));
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
        let kind = if meta.is_dir() {
            let (mut files, mut empty) = (Vec::new(), Vec::new());
            walk(path, &mut Vec::new(), &mut files, &mut empty, &mut errors);
            InputKind::Folder { files, empty }
        } else if let Some(kind) = special(&meta) {
            errors.push(Error::NotAFile {
                path: path.clone(),
                kind,
            });
            continue;
        } else {
            InputKind::File { size: meta.len() }
        };
        inputs.push(LocalInput {
            path: path.clone(),
            name,
            kind,
        });
    }
    (inputs, errors)
}

/// Decides the key of every file, from `dest` (a key, or a folder prefix when empty or ending
/// with `/`), whether `dest` names an existing folder, and the inputs. Pure: no I/O.
///
/// Every key starts with the destination folder (or is `dest` itself for a single file sent
/// to a key). A name that could not stay one key segment (empty, `.`, `..`, containing `/`) and
/// a second file that would get a key already planned are errors, never silently merged.
pub fn plan_keys(
    dest: &str,
    dest_is_folder: bool,
    inputs: &[LocalInput],
) -> (Vec<UploadItem>, Vec<Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    let single_file_to_key = inputs.len() == 1
        && matches!(inputs[0].kind, InputKind::File { .. })
        && !dest.is_empty()
        && !dest.ends_with('/')
        && !dest_is_folder;
    let base = if dest.is_empty() || dest.ends_with('/') {
        dest.to_owned()
    } else {
        format!("{dest}/")
    };
    // Which input claimed each key first, to report (not overwrite) the second.
    let mut claimed: HashMap<String, PathBuf> = HashMap::new();
    let mut add = |path: &Path, key: String, size: u64, errors: &mut Vec<Error>| {
        // Refused here with a reason, rather than by the server with a bare 400 (the embedded
        // store says only "Bad Request").
        if key.len() > MAX_KEY_BYTES {
            errors.push(Error::KeyTooLong {
                path: path.to_owned(),
                bytes: key.len(),
            });
            return;
        }
        if let Some(first) = claimed.get(&key) {
            errors.push(Error::SameKey {
                key,
                first: first.clone(),
                second: path.to_owned(),
            });
            return;
        }
        claimed.insert(key.clone(), path.to_owned());
        items.push(UploadItem {
            path: path.to_owned(),
            key,
            size,
        });
    };
    for input in inputs {
        if let Err(e) = check_segment(&input.path, &input.name) {
            errors.push(e);
            continue;
        }
        match &input.kind {
            InputKind::File { size } if single_file_to_key => {
                add(&input.path, dest.to_owned(), *size, &mut errors);
            }
            InputKind::File { size } => add(
                &input.path,
                format!("{base}{}", input.name),
                *size,
                &mut errors,
            ),
            InputKind::Folder { files, .. } => {
                for file in files {
                    if file.relative.is_empty() {
                        errors.push(bad_name(&file.path));
                        continue;
                    }
                    if let Some(e) = file
                        .relative
                        .iter()
                        .find_map(|s| check_segment(&file.path, s).err())
                    {
                        errors.push(e);
                        continue;
                    }
                    let key = format!("{base}{}/{}", input.name, file.relative.join("/"));
                    add(&file.path, key, file.size, &mut errors);
                }
            }
        }
    }
    (items, errors)
}

/// The folder markers that keep the empty folders of `inputs` (see [`InputKind::Folder`])
/// under `dest`, as [`plan_keys`] places their files. Folders whose names cannot be keys are
/// left out.
pub fn empty_folder_keys(dest: &str, inputs: &[LocalInput]) -> Vec<String> {
    let base = if dest.is_empty() || dest.ends_with('/') {
        dest.to_owned()
    } else {
        format!("{dest}/")
    };
    let mut keys = Vec::new();
    for input in inputs {
        let InputKind::Folder { empty, .. } = &input.kind else {
            continue;
        };
        for relative in empty {
            let names = std::iter::once(&input.name).chain(relative);
            if names
                .clone()
                .any(|n| check_segment(&input.path, n).is_err())
            {
                continue;
            }
            let key = format!("{base}{}/", names.cloned().collect::<Vec<_>>().join("/"));
            if key.len() <= MAX_KEY_BYTES {
                keys.push(key);
            }
        }
    }
    keys
}

/// S3's longest key, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

/// A name must stay exactly one key segment: S3 tools and downloaders read `/`, `.` and `..`
/// as structure, which would move the object elsewhere than the user named.
fn check_segment(path: &Path, name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(bad_name(path));
    }
    Ok(())
}

fn bad_name(path: &Path) -> Error {
    Error::UnusableName {
        path: path.to_owned(),
        why: "has no file name that can be a key; rename it to upload it",
    }
}

fn walk(
    dir: &Path,
    relative: &mut Vec<String>,
    files: &mut Vec<LocalFile>,
    empty: &mut Vec<Vec<String>>,
    errors: &mut Vec<Error>,
) {
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
                });
            })
            .ok()
        })
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    if entries.is_empty() {
        empty.push(relative.clone());
    }
    for entry in entries {
        let path = entry.path();
        // The entry's own name: a symlinked file keeps its name, not its target's.
        let Some(name) = entry.file_name().to_str().map(ToOwned::to_owned) else {
            errors.push(not_utf8(&path));
            continue;
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        match std::fs::metadata(&path) {
            Err(source) => errors.push(unreadable(path, source)),
            Ok(m) if is_link && m.is_dir() => errors.push(Error::SymlinkedFolder { path }),
            Ok(m) if let Some(kind) = special(&m) => errors.push(Error::NotAFile { path, kind }),
            Ok(m) if m.is_dir() => {
                relative.push(name);
                walk(&path, relative, files, empty, errors);
                relative.pop();
            }
            Ok(m) => {
                let mut rel = relative.clone();
                rel.push(name);
                files.push(LocalFile {
                    path,
                    relative: rel,
                    size: m.len(),
                });
            }
        }
    }
}

/// Why `path` cannot be read; a symbolic link whose target is missing says so, rather than
/// "No such file or directory" about a path the user can see.
fn unreadable(path: PathBuf, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound
        && let Ok(target) = std::fs::read_link(&path)
    {
        return Error::BrokenLink { path, target };
    }
    Error::Local {
        what: "cannot read",
        path,
        source,
    }
}

/// What a path that is neither a file nor a folder is: a named pipe would make the upload
/// wait for a writer forever, and a device can be endless.
fn special(meta: &std::fs::Metadata) -> Option<&'static str> {
    if meta.is_file() || meta.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        if t.is_fifo() {
            return Some("a named pipe");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
    }
    Some("a special file")
}

/// The name a path the user gave goes by: its last part as written (a symlink keeps its own
/// name), or, for `.` and `..`, the name of the folder they stand for.
fn file_name(path: &Path) -> Result<String, Error> {
    let name = path.file_name().map(ToOwned::to_owned).or_else(|| {
        path.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(ToOwned::to_owned))
    });
    let Some(name) = name else {
        return Err(Error::UnusableName {
            path: path.to_owned(),
            why: "has no file name to use as a key",
        });
    };
    name.into_string().map_err(|_| not_utf8(path))
}

fn not_utf8(path: &Path) -> Error {
    Error::UnusableName {
        path: path.to_owned(),
        why: "has a name that is not valid UTF-8; rename it to upload it",
    }
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

    /// Links go by their own names; a linked folder below a folder is reported, not skipped in
    /// silence. On the old code `link.txt` was planned as `a b.txt` (and refused as a second
    /// file for that key), and `linked/` vanished from the upload without a word.
    #[cfg(unix)]
    #[test]
    fn symbolic_links_keep_their_names_and_linked_folders_are_reported() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a b.txt"), b"1").unwrap();
        std::fs::write(root.join("sub/c.txt"), b"22").unwrap();
        symlink("a b.txt", root.join("link.txt")).unwrap();
        symlink("sub", root.join("linked")).unwrap();
        let top = dir.path().join("top-link");
        symlink(root.join("a b.txt"), &top).unwrap();
        let top_folder = dir.path().join("folder-link");
        symlink(root.join("sub"), &top_folder).unwrap();

        let (items, errors) = plan_upload(&[root.clone(), top, top_folder], "in/");
        let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "in/src/a b.txt",
                "in/src/link.txt",
                "in/src/sub/c.txt",
                "in/top-link",
                // A linked folder the user named is followed, under its own name.
                "in/folder-link/c.txt",
            ]
        );
        let link = items.iter().find(|i| i.key == "in/src/link.txt").unwrap();
        assert_eq!(link.size, 1, "a link's file is its target's");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let message = errors[0].to_string();
        assert!(
            message.contains(&root.join("linked").display().to_string())
                && message.contains("not followed")
                && message.contains("upload that folder itself"),
            "{message}"
        );
        // A link to nothing says so.
        symlink("nowhere", root.join("broken")).unwrap();
        let (_, errors) = plan_upload(std::slice::from_ref(&root), "in/");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let broken = format!(
            "{} is a symbolic link to nowhere",
            root.join("broken").display()
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&broken) && m.contains("does not exist")),
            "{messages:?}"
        );
        std::fs::remove_file(root.join("broken")).unwrap();
        // `.` and `..` go by the name of the folder they stand for.
        let (items, errors) = plan_upload(&[root.join("sub/.")], "in/");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(items[0].key, "in/sub/c.txt");
        let (items, _) = plan_upload(&[root.join("sub/..")], "in/");
        assert_eq!(items[0].key, "in/src/a b.txt");
    }

    /// A named pipe or a device, below a folder or named: reported, never read (a pipe would
    /// make the upload wait for a writer forever). On the old code both were planned as empty
    /// files, and the upload of the pipe never ended.
    #[cfg(unix)]
    #[test]
    fn pipes_and_devices_are_reported_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"1").unwrap();
        let fifo = root.join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain system call on a NUL-terminated path that lives through the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let (items, errors) = plan_upload(&[root, fifo.clone(), "/dev/null".into()], "in/");
        let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["in/src/a.txt"]);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        let pipe = format!(
            "{} is a named pipe, neither a file nor a folder",
            fifo.display()
        );
        assert_eq!(
            messages.iter().filter(|m| m.contains(&pipe)).count(),
            2,
            "{messages:?}"
        );
        assert!(
            messages[2].contains("/dev/null is a device"),
            "{messages:?}"
        );
    }

    /// A key over S3's 1024 bytes (counted in UTF-8) is refused with the reason; one of exactly
    /// 1024 bytes goes. On the old code both were planned, and the server answered the long one
    /// with a bare 400.
    #[test]
    fn keys_longer_than_s3_allows_are_reported() {
        let ok = file(&format!("/a{}", "é".repeat(510)), 1);
        let long = file(&format!("/ab{}", "é".repeat(510)), 1);
        let (items, errors) = plan_keys("in/", false, &[ok, long]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].key.len(), 1024);
        assert_eq!(errors.len(), 1);
        let message = errors[0].to_string();
        assert!(
            message.contains("a key of 1025 bytes") && message.contains("at most 1024"),
            "{message}"
        );
    }

    /// An input at `path`, named after its last component.
    fn input(path: &str, kind: InputKind) -> LocalInput {
        LocalInput {
            path: PathBuf::from(path),
            name: Path::new(path)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .into(),
            kind,
        }
    }

    fn file(path: &str, size: u64) -> LocalInput {
        input(path, InputKind::File { size })
    }

    fn folder(path: &str, files: &[&str]) -> LocalInput {
        let files = files
            .iter()
            .map(|f| LocalFile {
                path: Path::new(path).join(f),
                relative: f.split('/').map(str::to_owned).collect(),
                size: 1,
            })
            .collect();
        input(
            path,
            InputKind::Folder {
                files,
                empty: Vec::new(),
            },
        )
    }

    fn keys(dest: &str, is_folder: bool, inputs: &[LocalInput]) -> (Vec<String>, usize) {
        let (items, errors) = plan_keys(dest, is_folder, inputs);
        (items.into_iter().map(|i| i.key).collect(), errors.len())
    }

    /// The cases: on the old code `put DIR s3://b/backup` went to `DIR/…` and
    /// `put a b s3://b/x` to `xa`, `xb`.
    #[test]
    fn destinations_follow_cp() {
        let dir = folder("/tmp/DIR", &["f.txt", "sub/g.txt"]);
        assert_eq!(
            keys("backup", false, std::slice::from_ref(&dir)),
            (
                vec!["backup/DIR/f.txt".into(), "backup/DIR/sub/g.txt".into()],
                0
            )
        );
        assert_eq!(
            keys("backup/", false, std::slice::from_ref(&dir)),
            (
                vec!["backup/DIR/f.txt".into(), "backup/DIR/sub/g.txt".into()],
                0
            )
        );
        assert_eq!(
            keys("x", false, &[file("/a", 1), file("/b", 2)]),
            (vec!["x/a".into(), "x/b".into()], 0)
        );
        assert_eq!(keys("x", false, &[file("/a", 1)]), (vec!["x".into()], 0));
        assert_eq!(keys("x", true, &[file("/a", 1)]), (vec!["x/a".into()], 0));
        assert_eq!(keys("", false, &[file("/a", 1)]), (vec!["a".into()], 0));
    }

    #[test]
    fn a_second_file_for_the_same_key_is_reported() {
        let (items, errors) =
            plan_keys("in/", false, &[file("/d1/x.txt", 1), file("/d2/x.txt", 2)]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, Path::new("/d1/x.txt"));
        assert_eq!(errors.len(), 1);
        let message = errors[0].to_string();
        assert!(
            message.contains("/d2/x.txt") && message.contains("in/x.txt"),
            "{message}"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Names as a file system could return them, plus the ones that must never become segments.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,3}",
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(String::new()),
            Just("a/b".to_owned()),
            "\\PC{1,6}",
        ]
    }

    fn input() -> impl Strategy<Value = LocalInput> {
        let file = (name(), 0u64..100).prop_map(|(n, size)| LocalInput {
            path: PathBuf::from(format!("/in/{n}")),
            name: n,
            kind: InputKind::File { size },
        });
        let folder = (
            name(),
            prop::collection::vec(prop::collection::vec(name(), 0..4), 0..5),
        )
            .prop_map(|(n, files)| LocalInput {
                path: PathBuf::from(format!("/in/{n}")),
                kind: InputKind::Folder {
                    files: files
                        .into_iter()
                        .map(|relative| LocalFile {
                            path: PathBuf::from(format!("/in/{n}/{}", relative.join("/"))),
                            relative,
                            size: 1,
                        })
                        .collect(),
                    empty: Vec::new(),
                },
                name: n,
            });
        prop_oneof![file, folder]
    }

    proptest! {
        #[test]
        fn every_key_is_in_the_destination_and_none_is_shared(
            dest in prop_oneof![Just(String::new()), "[a-z]{1,3}(/[a-z]{1,3})?/?", "\\PC{0,8}"],
            dest_is_folder in any::<bool>(),
            inputs in prop::collection::vec(input(), 1..5),
        ) {
            let (items, errors) = plan_keys(&dest, dest_is_folder, &inputs);
            // Nothing dropped silently: each file is planned or reported (a badly named input
            // once, as a whole).
            let expected: usize = inputs
                .iter()
                .map(|i| match &i.kind {
                    _ if check_segment(&i.path, &i.name).is_err() => 1,
                    InputKind::File { .. } => 1,
                    InputKind::Folder { files, .. } => files.len(),
                })
                .sum();
            prop_assert_eq!(items.len() + errors.len(), expected);
            let base = if dest.is_empty() || dest.ends_with('/') { dest.clone() } else { format!("{dest}/") };
            let single_key = inputs.len() == 1
                && matches!(inputs[0].kind, InputKind::File { .. })
                && !dest.is_empty() && !dest.ends_with('/') && !dest_is_folder;
            let mut seen = std::collections::HashSet::new();
            for item in &items {
                prop_assert!(seen.insert(item.key.clone()), "two files for {:?}", item.key);
                if single_key {
                    prop_assert_eq!(&item.key, &dest);
                } else {
                    prop_assert!(item.key.starts_with(&base), "{:?} outside {:?}", item.key, base);
                    // Below the destination, every segment is a real name.
                    for segment in item.key[base.len()..].split('/') {
                        prop_assert!(!matches!(segment, "" | "." | ".."), "{:?}", item.key);
                    }
                }
            }
        }

        /// Two inputs that give one key: one is planned, the other reported.
        #[test]
        fn duplicates_are_reported(name in "[a-z]{1,5}", dest in "[a-z]{0,3}/?") {
            let inputs = [1, 2].map(|n| LocalInput {
                path: PathBuf::from(format!("/d{n}/{name}")),
                name: name.clone(),
                kind: InputKind::File { size: n },
            });
            let (items, errors) = plan_keys(&dest, false, &inputs);
            prop_assert_eq!(items.len(), 1);
            prop_assert_eq!(errors.len(), 1);
            let is_same_key = matches!(errors[0], Error::SameKey { .. });
            prop_assert!(is_same_key);
        }
    }
}
