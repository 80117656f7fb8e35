//! Keeps the embedded store private to the user: folders 0700, files 0600.
//!
//! The process umask is left alone on purpose: the same process downloads the user's own files,
//! which must get the modes the user expects. So the store's folders are created 0700 (nothing
//! below them is reachable by other users, including s3s-fs's short-lived temporary files), and
//! every file s3s-fs writes is made 0600 right after the write by [`PrivateFs`], an S3 layer
//! over [`VerifyingFs`](super::VerifyingFs) that knows which files each operation leaves.

use std::io;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use super::{StoreError, StorePaths};

/// Mode of every folder of the store.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of every file of the store.
pub(super) const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents 0700, and makes `dir` itself 0700 if it existed.
pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    make_private(dir)
}

/// Opens (creating it 0600 if needed) a file the store writes itself, such as a lock file.
pub(super) fn open_private_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    make_private(path)?;
    Ok(file)
}

/// Creates the store's folders, private, and makes an install from before this rule private.
pub(super) fn prepare_folders(paths: &StorePaths) -> Result<(), StoreError> {
    let io_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { what, path, source }
    };
    for dir in [&paths.config_dir, &paths.data_dir] {
        create_private_dir(dir).map_err(io_err("cannot create", dir))?;
    }
    let objects = paths.objects_dir();
    // The objects folder is made private last, after everything else: its mode says whether an
    // older install still needs the (one-time, possibly long) walk over all its files.
    let fixed = mode_of(&objects).is_some_and(|m| m == DIR_MODE);
    if !fixed {
        let mut failures = 0;
        for dir in [&paths.config_dir, &paths.data_dir] {
            failures += make_tree_private(dir, &objects);
        }
        if failures > 0 {
            tracing::warn!(
                failures,
                "embedded store: some files could not be made private to you (0600); fix their owner or mode"
            );
        } else if objects.exists() {
            make_private(&objects).map_err(io_err("cannot make private", &objects))?;
        }
    }
    let bucket = objects.join(super::DEFAULT_BUCKET);
    create_private_dir(&bucket).map_err(io_err("cannot create", &bucket))
}

fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::symlink_metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Some(DIR_MODE)
    }
}

/// Gives `path` the store's mode for its kind (folder 0700, file 0600). Symbolic links are left
/// alone: changing one would change what it points to. A path that does not exist is no error.
pub(super) fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let wanted = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            return Ok(());
        };
        if meta.permissions().mode() & 0o7777 != wanted {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes everything below `dir` private (not `dir` itself, nor `last`, which the caller does
/// once the walk succeeded). Returns how many entries could not be fixed.
fn make_tree_private(dir: &Path, last: &Path) -> usize {
    let mut failures = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "embedded store: cannot read: {e}");
                failures += 1;
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                failures += 1;
                continue;
            };
            if kind.is_symlink() {
                continue;
            }
            // A folder first gets its mode fixed so that it can be read, then is walked.
            if path != last
                && let Err(e) = make_private(&path)
            {
                tracing::warn!(path = %path.display(), "embedded store: cannot make private: {e}");
                failures += 1;
            }
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    failures
}

/// `root` joined with the relative `rel`, resolved lexically as s3s-fs resolves keys, or `None`
/// when it would leave `root` (s3s-fs refuses such keys, and no file outside may be touched).
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_owned();
    let mut depth = 0usize;
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => {
                out.push(p);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The embedded store's S3 implementation as served: [`VerifyingFs`](super::VerifyingFs) with
/// every file and folder it writes made private right after the write.
pub struct PrivateFs<S> {
    inner: S,
    root: PathBuf,
}

impl<S> PrivateFs<S> {
    /// Serves `inner`, whose files live under `root` (s3s-fs's root: one folder per bucket).
    pub fn new(inner: S, root: &Path) -> io::Result<Self> {
        Ok(Self {
            inner,
            root: root.canonicalize()?,
        })
    }

    fn fix(&self, path: &Path) {
        match make_private(path) {
            Ok(()) => {}
            // Nothing there to protect: a request that failed, or a bookkeeping file s3s-fs
            // could not write (its names grow with the key's, past what a file name holds).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidFilename
                ) =>
            {
                tracing::debug!(path = %path.display(), "embedded store: nothing to make private: {e}");
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "embedded store: cannot make private: {e}");
            }
        }
    }

    /// s3s-fs's own bookkeeping file `name` in the root folder.
    fn fix_root_file(&self, name: &str) {
        self.fix(&self.root.join(name));
    }

    /// The object `bucket/key`, the folders created for it, and its metadata files.
    fn fix_object(&self, bucket: &str, key: &str) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Some(bucket_dir) = inside(&self.root, bucket) else {
            return;
        };
        if let Some(object) = inside(&bucket_dir, key) {
            self.fix(&object);
            let mut dir = object.parent();
            while let Some(d) = dir
                && d.starts_with(&bucket_dir)
            {
                self.fix(d);
                dir = d.parent();
            }
        }
        let tag = format!(
            ".bucket-{}.object-{}",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        );
        self.fix_root_file(&format!("{tag}.metadata.json"));
        self.fix_root_file(&format!("{tag}.internal.json"));
    }

    fn fix_part(&self, upload_id: &str, part_number: i32) {
        if upload_id.contains(['/', '\\']) {
            return;
        }
        let id = upload_id.to_ascii_lowercase();
        self.fix_root_file(&format!(".upload_id-{id}.part-{part_number}"));
    }
}

/// Delegates each operation the inner store implements, then fixes what the writing ones left.
/// (`async_trait` must see the expanded methods, so the macro writes the whole impl.)
macro_rules! impl_s3_private {
    ($($name:ident($input:ty) -> $output:ty;)* { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl<S: S3> S3 for PrivateFs<S> {
            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.inner.$name(req).await
                }
            )*
            $($own)*
        }
    };
}

impl_s3_private! {
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    get_object(GetObjectInput) -> GetObjectOutput;
    head_bucket(HeadBucketInput) -> HeadBucketOutput;
    head_object(HeadObjectInput) -> HeadObjectOutput;
    list_buckets(ListBucketsInput) -> ListBucketsOutput;
    list_objects(ListObjectsInput) -> ListObjectsOutput;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    list_parts(ListPartsInput) -> ListPartsOutput;
    list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
{
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket.clone();
        let result = self.inner.create_bucket(req).await;
        if let Some(dir) = inside(&self.root, &bucket) {
            self.fix(&dir);
        }
        result
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let result = self.inner.put_object(req).await;
        self.fix_object(&bucket, &key);
        result
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let result = self.inner.copy_object(req).await;
        self.fix_object(&bucket, &key);
        result
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let result = self.inner.create_multipart_upload(req).await;
        if let Ok(response) = &result
            && let Some(id) = response.output.upload_id.as_deref()
            && !id.contains(['/', '\\'])
        {
            self.fix_root_file(&format!(".upload-{id}.json"));
            self.fix_root_file(&format!(
                ".bucket-{}.object-{}.upload-{id}.metadata.json",
                URL_SAFE_NO_PAD.encode(&bucket),
                URL_SAFE_NO_PAD.encode(&key)
            ));
        }
        result
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let (id, part) = (req.input.upload_id.clone(), req.input.part_number);
        let result = self.inner.upload_part(req).await;
        self.fix_part(&id, part);
        result
    }

    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let (id, part) = (req.input.upload_id.clone(), req.input.part_number);
        let result = self.inner.upload_part_copy(req).await;
        self.fix_part(&id, part);
        result
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let result = self.inner.complete_multipart_upload(req).await;
        self.fix_object(&bucket, &key);
        result
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_inside_the_root_or_not_at_all() {
        let root = Path::new("/r");
        assert_eq!(
            inside(root, "b/a/c.txt"),
            Some(PathBuf::from("/r/b/a/c.txt"))
        );
        assert_eq!(inside(root, "b/./a//c"), Some(PathBuf::from("/r/b/a/c")));
        assert_eq!(inside(root, "b/x/../c"), Some(PathBuf::from("/r/b/c")));
        assert_eq!(inside(root, "b/../../etc"), None);
        assert_eq!(inside(root, "/etc"), None);
    }
}
